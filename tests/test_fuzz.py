"""Property-based fuzzing of the command line's arguments and of ``report``'s loader: whatever
comes in, no traceback, an exit code in {0, 1, 2}, and nothing written on exit 2."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xavinit.cli import main

DATA = Path(__file__).parent / "data"


def _run(args: list[str]) -> tuple[int, str]:
    """``xavinit ARGS`` through the console entry point: (exit code, stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(args)
    return code, err.getvalue()


TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
VALUES = st.one_of(
    TEXT,
    st.integers(-5, 40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["standard", "he-normal:mode=fan_out", "tanh", "relu", "4,3", "2x3", "json",
                     "csv", "nan", "-1", "0", "1e999", "in-out", "out-in", ""]),
)  # fmt: skip
OPTIONS = st.sampled_from([
    "--scheme", "-s", "--trials", "--alpha", "--correction", "--dtype", "--key", "--layout",
    "--ks-sample", "--seed", "--format", "-f", "--depth", "--width", "--inputs", "--outputs",
    "--bogus", "-z",
])  # fmt: skip


def _settings(examples: int):
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


@_settings(120)
@given(pairs=st.lists(st.tuples(OPTIONS, VALUES), max_size=5))
def test_init_arguments(pairs):
    args = ["init", "--layers", "4,3"]
    for option, value in pairs:
        if option in ("--depth", "--width", "--inputs", "--outputs"):
            continue  # they would replace the tiny --layers with the paper's network
        args += [option, value]
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "out.json"
        code, stderr = _run([*args, "-q", "-o", str(target)])
        assert code in (0, 1, 2), (args, stderr)
        if code == 2:
            assert not target.exists()
            assert len(stderr.strip().splitlines()) == 1, stderr


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**12) | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


def _paths(document, prefix=()):
    """Every path to a value inside ``document``."""
    yield prefix
    if isinstance(document, dict):
        for key, value in document.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document[:3]):
            yield from _paths(value, (*prefix, index))


ORIGINAL = json.loads((DATA / "train.json").read_text())
PATHS = [p for p in _paths(ORIGINAL) if p]


@_settings(150)
@given(where=st.sampled_from(PATHS), value=JSON)
def test_report_of_a_mutated_result(where, value):
    document = json.loads(json.dumps(ORIGINAL))
    holder = document
    for key in where[:-1]:
        holder = holder[key]
    holder[where[-1]] = value
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "result.json"
        source.write_text(json.dumps(document))
        target = Path(folder) / "report.md"
        code, stderr = _run(["report", str(source), "-q", "-o", str(target)])
        assert code in (0, 1, 2), (where, value, stderr)
        if code == 2:
            assert not target.exists()
            assert len(stderr.strip().splitlines()) == 1, stderr


SAFETENSORS_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "dtype": st.one_of(st.sampled_from(["F32", "F16", "BF16", "I8", "F8_E4M3", "BOOL"]), TEXT),
        "shape": st.one_of(
            st.lists(st.integers(-3, 2**70), max_size=4), TEXT, st.integers(), st.none()
        ),
        "data_offsets": st.one_of(
            st.lists(st.integers(-10, 2**66), min_size=0, max_size=3), TEXT, st.none()
        ),
    },
)


@_settings(150)
@given(
    entries=st.dictionaries(TEXT, SAFETENSORS_FIELDS, max_size=4),
    data=st.binary(max_size=64),
    length_delta=st.integers(-3, 3),
)
def test_check_of_a_hostile_safetensors_header(entries, data, length_delta):
    """Any header, any data, any declared length: a verdict (0/1) or one line (2), never a
    traceback, and nothing written on exit 2."""
    header = json.dumps(entries).encode()
    blob = (len(header) + length_delta).to_bytes(8, "little", signed=True) + header + data
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.safetensors"
        path.write_bytes(blob)
        target = Path(folder) / "out.json"
        code, err = _run(["check", str(path), "-q", "-o", str(target)])
        assert code in (0, 1, 2), err
        assert "Traceback" not in err
        if code == 2:
            assert len(err.strip().splitlines()) == 1 and err.startswith("Error: "), err
            assert not target.exists()


@_settings(80)
@given(blob=st.binary(max_size=400), name=st.sampled_from(["m.pt", "m.onnx", "m.npy", "m.keras"]))
def test_check_of_random_bytes_in_any_format(blob, name):
    """Bytes of no format, named as each: one line and exit 2 (or, rarely, a file read)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(blob)
        code, err = _run(["check", str(path), "-q"])
        assert code in (0, 1, 2), err
        assert "Traceback" not in err
        if code == 2:
            assert len(err.strip().splitlines()) == 1 and err.startswith("Error: "), err


# --- a sweep folder, hand-edited ------------------------------------------------------------

SWEEP_GRID = [
    "--layers", "12,8,3", "-a", "tanh", "-s", "normalized", "--lr", "0.1", "--lr", "0.3",
    "--seeds", "0", "--select-at", "10", "--updates", "20", "--eval-every", "10",
    "--track-every", "10", "--workers", "1",
]  # fmt: skip
"""Two runs, the rate chosen after 10 updates: a manifest, two results and a selection.json."""

HOW_IT_RAN = ("wall_seconds", "worker", "retries")
"""What the manifest says of how a run ran, reported as recorded."""


def _sweep(folder: Path, *args: str) -> tuple[int, str, str]:
    """``xavinit sweep --dir FOLDER ARGS`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main(["sweep", "--dir", str(folder), *args, "-q", "-f", "json"])
    return code, out.getvalue(), err.getvalue()


def _numbers(document: dict) -> dict:
    """What a sweep reports that its runs computed."""
    runs = [{k: v for k, v in r.items() if k not in HOW_IT_RAN} for r in document["runs"]]
    return {"runs": runs, "table": document["table"], "passed": document["passed"]}


@pytest.fixture(scope="module")
def sweep_folder(module_blobs, tmp_path_factory):
    """A finished tiny sweep, its files' documents by path, and its true numbers."""
    folder = tmp_path_factory.mktemp("fuzz") / "sweep"
    code, out, err = _sweep(folder, "-d", f"npz:{module_blobs}", *SWEEP_GRID)
    assert code == 0, err
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.json"))
    files = [f for f in files if not f.endswith("attempts.json")]
    assert len(files) == 4  # the manifest, two results, the chosen run's selection.json
    documents = {f: json.loads((folder / f).read_text()) for f in files}
    return folder, documents, _numbers(json.loads(out))


_DELETE = object()
"""A drawn 'value' that removes the key instead."""


@_settings(40)
@given(data=st.data())
def test_a_mutated_sweep_folder(sweep_folder, data):
    """Any value anywhere in the manifest or a run's result, or a key removed: the sweep reports
    the numbers its runs trained (exit 0, nothing trained again) or refuses the folder in one
    line (exit 2), never a traceback."""
    folder, documents, truth = sweep_folder
    name = data.draw(st.sampled_from(sorted(documents)), label="file")
    where = data.draw(st.sampled_from([p for p in _paths(documents[name]) if p]), label="path")
    value = data.draw(st.one_of(st.just(_DELETE), JSON), label="value")
    # A manifest without the files' digests (written before them): the result is then read on
    # its own evidence alone, and must still give exit 0 or one line.
    forget = name != "manifest.json" and data.draw(st.booleans(), label="no digests")
    document = json.loads(json.dumps(documents[name]))
    holder = document
    for key in where[:-1]:
        holder = holder[key]
    if value is _DELETE:
        del holder[where[-1]]
    else:
        holder[where[-1]] = value
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "sweep"
        shutil.copytree(folder, copy)
        (copy / name).write_text(json.dumps(document))
        if forget:
            manifest = json.loads(json.dumps(documents["manifest.json"]))
            for record in manifest["runs"].values():
                record.update(result_sha256=None, result_at=None, selection_sha256=None)
            (copy / "manifest.json").write_text(json.dumps(manifest))
        code, out, err = _sweep(copy)
    assert "Traceback" not in err, err
    assert code in (0, 2), (name, where, value, err)
    if code == 2:
        assert len(err.strip().splitlines()) == 1 and err.startswith("Error: "), err
    else:
        result = json.loads(out)
        assert result["trained_updates"] == 0, (name, where, value)
        numbers, expected = _numbers(result), json.loads(json.dumps(truth))
        if forget:  # the final histograms and validation error: no record but the digest
            for run in [*numbers["runs"], *expected["runs"]]:
                run.pop("final_histograms"), run.pop("final_valid_error")
        assert numbers == expected, (name, where, value)
