"""Property-based fuzzing of the command line's arguments and of ``report``'s loader: whatever
comes in, no traceback, an exit code in {0, 1, 2}, and nothing written on exit 2."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path

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
