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


# --- check's readers: pickles, ONNX; report's loader on several commands' results -------------


def _quiet_run(args: list[str]) -> tuple[int, str]:
    """:func:`_run`, failing on any Python warning."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, err = _run(args)
    assert not caught, [str(w.message) for w in caught]
    return code, err


def _verdict_or_one_line(code: int, err: str) -> None:
    assert code in (0, 1, 2), err
    assert "Traceback" not in err
    if code == 2:
        assert len(err.strip().splitlines()) == 1 and err.startswith("Error: "), err


def _check_bytes(blob: bytes, name: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(blob)
        _verdict_or_one_line(*_quiet_run(["check", str(path), "-q"]))


MUTATION = st.tuples(st.sampled_from(["set", "flip", "cut", "insert", "delete"]),
                     st.floats(0, 1, exclude_max=True), st.binary(min_size=1, max_size=8))  # fmt: skip


def _mutated(blob: bytes, mutations: list[tuple[str, float, bytes]]) -> bytes:
    """``blob`` with each mutation applied at its relative position."""
    out = bytearray(blob)
    for kind, where, data in mutations:
        at = int(where * len(out)) if out else 0
        if kind == "set" and out:
            out[at] = data[0]
        elif kind == "flip" and out:
            out[at] ^= 1 << (data[0] % 8)
        elif kind == "cut":
            del out[at:]
        elif kind == "insert":
            out[at:at] = data
        else:
            del out[at : at + len(data)]
    return bytes(out)


_MADE: dict[str, bytes] = {}


def _made(kind: str) -> bytes:
    """A real file, made once: ``zip`` and ``legacy`` torch.save of a small state dict, ``onnx``
    a small model with Gemm, Conv, LSTM and MatMul initializers (the onnx helper API)."""
    if kind not in _MADE:
        import warnings

        import numpy as np

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "file"
            if kind == "onnx":
                onnx = __import__("pytest").importorskip("onnx")
                from onnx import TensorProto, helper, numpy_helper

                rng = np.random.default_rng(0)

                def init(name, shape):
                    values = rng.uniform(-0.3, 0.3, shape).astype(np.float32)
                    return numpy_helper.from_array(values, name)

                def info(name, shape):
                    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)

                graph = helper.make_graph(
                    [
                        helper.make_node("Gemm", ["x", "fc.W", "fc.B"], ["h"]),
                        helper.make_node("Conv", ["img", "conv.W", "conv.B"], ["c"]),
                        helper.make_node("LSTM", ["seq", "lstm.W", "lstm.R"], ["o"], hidden_size=4),
                        helper.make_node("MatMul", ["h", "mm.W"], ["y"]),
                    ],
                    "g",
                    [info("x", [1, 8]), info("img", [1, 2, 5, 5]), info("seq", [3, 1, 6])],
                    [info("y", [1, 5]), info("c", [1]), info("o", [1])],
                    [init("fc.W", (8, 6)), init("fc.B", (6,)), init("conv.W", (4, 2, 3, 3)),
                     init("conv.B", (4,)), init("lstm.W", (1, 16, 6)), init("lstm.R", (1, 16, 4)),
                     init("mm.W", (6, 5))],
                )  # fmt: skip
                onnx.save(helper.make_model(graph), path)
            else:
                torch = __import__("pytest").importorskip("torch")
                torch.manual_seed(0)
                model = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Linear(4, 3))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    torch.save(model.state_dict(), path,
                               _use_new_zipfile_serialization=kind == "zip")  # fmt: skip
            _MADE[kind] = path.read_bytes()
    return _MADE[kind]


@_settings(30)
@given(
    kind=st.sampled_from(["zip", "legacy"]), mutations=st.lists(MUTATION, min_size=1, max_size=4)
)
def test_check_of_a_mutated_torch_checkpoint(kind, mutations):
    _check_bytes(_mutated(_made(kind), mutations), "model.pt")


@_settings(30)
@given(mutations=st.lists(MUTATION, min_size=1, max_size=4))
def test_check_of_a_torch_archive_whose_pickle_is_mutated(mutations):
    """The zip stays valid (right sizes and CRCs), so the mutated pickle reaches the unpickler."""
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(_made("zip"))) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith("data.pkl"):
                data = _mutated(data, mutations)
            target.writestr(info.filename, data)
    _check_bytes(out.getvalue(), "model.pt")


def _opcode(op, value: int, text: bytes) -> bytes:
    """One pickle opcode with an argument of its kind made from ``value`` and ``text``."""
    import struct

    arg = op.arg
    if arg is None:
        return op.code.encode("latin-1")
    n = arg.n
    if arg.name == "stringnl_noescape_pair":
        body = text + b"\n" + text + b"\n"
    elif n == -1:  # up to a newline
        body = text + b"\n"
    elif n == 1:
        body = bytes([value & 0xFF])
    elif n == 2:
        body = struct.pack("<H", value & 0xFFFF)
    elif n == 4:
        body = struct.pack("<I", value % 2**31)
    elif n == 8:
        body = struct.pack("<Q", value)
    elif n == -2:  # a 1-byte length, then the bytes (string1, bytes1, long1...)
        body = bytes([min(len(text) + value % 3, 255)]) + text
    elif n in (-3, -4):  # a 4-byte length
        body = struct.pack("<I", len(text) + value % 3) + text
    else:  # an 8-byte length
        body = struct.pack("<Q", len(text) + value % 3) + text
    return op.code.encode("latin-1") + body


OPCODES = st.lists(
    st.tuples(
        st.sampled_from(sorted(__import__("pickletools").opcodes, key=lambda o: o.code)),
        st.integers(0, 2**16),
        st.sampled_from([b"0", b"storage", b"torch", b"FloatStorage", b"collections",
                         b"OrderedDict", b"torch._utils", b"_rebuild_tensor_v2", b"os", b"system",
                         b"weight", b"'a'", b"1"]),
    ),
    max_size=24,
)  # fmt: skip


@_settings(40)
@given(ops=OPCODES, legacy=st.booleans())
def test_check_of_a_random_opcode_stream(ops, legacy):
    """Any stream of pickle opcodes as a checkpoint's object pickle, in a zip archive or after a
    legacy file's header pickles: a refusal in one line, never a traceback, nothing run."""
    import pickle
    import struct
    import zipfile

    body = b"\x80\x02" + b"".join(_opcode(op, value, text) for op, value, text in ops) + b"."
    if legacy:
        head = b"".join(pickle.dumps(v, protocol=2) for v in (
            0x1950A86A20F9469CFC6C, 1001, {"little_endian": True, "protocol_version": 1001}))  # fmt: skip
        blob = head + body + pickle.dumps(["0"], protocol=2) + struct.pack("<q", 4) + bytes(16)
    else:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            archive.writestr("archive/data.pkl", body)
            archive.writestr("archive/data/0", bytes(64))
        blob = out.getvalue()
    _check_bytes(blob, "model.pt")


@_settings(30)
@given(mutations=st.lists(MUTATION, min_size=1, max_size=4))
def test_check_of_a_mutated_onnx_model(mutations):
    _check_bytes(_mutated(_made("onnx"), mutations), "model.onnx")


ONNX_EDITS = st.lists(
    st.tuples(
        st.integers(0, 6),  # which initializer
        st.sampled_from(["dims", "type", "raw", "floats", "external", "name", "op", "group"]),
        st.sampled_from([[], [0], [1], [2, 2**40], [-1, 4], [4], [6, 4, 1, 1], [2**62]]),
    ),
    min_size=1,
    max_size=3,
)


@_settings(30)
@given(edits=ONNX_EDITS)
def test_check_of_an_onnx_model_with_hostile_fields(edits):
    """A well-formed protobuf whose fields lie: dims that do not match the data, other element
    types, external data outside the folder, duplicate names, a Conv weight of rank 1."""
    onnx = __import__("pytest").importorskip("onnx")

    model = onnx.load_from_string(_made("onnx"))
    tensors = list(model.graph.initializer)
    for which, field, dims in edits:
        tensor = tensors[which % len(tensors)]
        node = model.graph.node[which % len(model.graph.node)]
        if field == "dims":
            del tensor.dims[:]
            tensor.dims.extend(dims)
        elif field == "type":
            tensor.data_type = (dims[0] if dims else 0) % 24
        elif field == "raw":
            tensor.raw_data = tensor.raw_data[: len(dims) * 4]
        elif field == "floats":
            tensor.raw_data = b""
            tensor.float_data.extend([1.0] * len(dims))
        elif field == "external":
            tensor.data_location = 1
            entry = tensor.external_data.add()
            entry.key, entry.value = "location", ["x.bin", "../../etc/passwd", "/etc/passwd"][
                len(dims) % 3]  # fmt: skip
        elif field == "name":
            tensor.name = tensors[(which + 1) % len(tensors)].name  # a duplicate
        elif field == "op":
            node.op_type = ["Conv", "Gemm", "LSTM", "ConvTranspose", "Gather", "Foo"][len(dims) % 6]
        else:
            node.attribute.append(onnx.helper.make_attribute("group", (dims or [0])[0]))
    _check_bytes(model.SerializeToString(), "model.onnx")


_SAVED: dict[str, dict] = {}


def _saved_results() -> dict[str, dict]:
    """Real results of several commands (init, propagate through a file, check, gain, schemes,
    report), made once."""
    if not _SAVED:
        import numpy as np

        with tempfile.TemporaryDirectory() as folder:
            where = Path(folder)
            rng = np.random.default_rng(0)
            np.savez(where / "w.npz", a=rng.normal(0, 0.3, (6, 5)).astype(np.float32),
                     b=rng.uniform(-0.1, 0.1, (5, 40)).astype(np.float32))  # fmt: skip
            commands = {
                "init": ["init", "--layers", "8,8"],
                "propagate": ["propagate", "--weights", str(where / "w.npz"), "--batch", "20"],
                "check": ["check", str(where / "w.npz")],
                "gain": ["gain", "relu", "--check", "--depth", "3", "--width", "20"],
                "schemes": ["schemes", "he-normal", "--fan-in", "3", "--fan-out", "4"],
            }
            for name, args in commands.items():
                code, err = _run([*args, "-q", "-o", str(where / f"{name}.json")])
                assert code in (0, 1), err
            code, err = _run(["report", str(where / "init.json"), str(where / "check.json"), "-q",
                              "-o", str(where / "report.json")])  # fmt: skip
            for name in (*commands, "report"):
                _SAVED[name] = json.loads((where / f"{name}.json").read_text())
    return _SAVED


HOSTILE_VALUES = st.one_of(
    JSON,
    st.sampled_from([None, 2**70, 1e308, "inf", "nan", "", [], {}, [1.0], [1.0, 2.0, 3.0],
                     "[bold]x[/] \x1b[2J|y\nz<b>", "x" * 3000]),
)  # fmt: skip


@_settings(60)
@given(
    command=st.sampled_from(["init", "propagate", "check", "gain", "schemes", "report"]),
    data=st.data(),
    fmt=st.sampled_from(["table", "markdown", "html", "json", "csv", "yaml"]),
)
def test_report_of_a_mutated_result_of_any_command(command, data, fmt):
    """A value replaced, or a field left out, anywhere in a real result of each command: report
    renders it (0/1) or refuses it in one line (2); never a traceback or a warning."""
    document = json.loads(json.dumps(_saved_results()[command]))
    where = data.draw(st.sampled_from([p for p in _paths(document) if p]))
    holder = document
    for key in where[:-1]:
        holder = holder[key]
    if data.draw(st.booleans()) and isinstance(holder, dict):
        del holder[where[-1]]
    else:
        holder[where[-1]] = data.draw(HOSTILE_VALUES)
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "result.json"
        source.write_text(json.dumps(document))
        _verdict_or_one_line(*_quiet_run(["report", str(source), "-q", "-f", fmt]))


# --- the JSON writer: json.dumps(indent=2), character for character -------------------------

_JSON_LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=8)
)
_JSON_VALUES = st.recursive(
    _JSON_LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=6), inner, max_size=4),
        # keys json converts (1, 2.5, true, null) beside containers and scalars
        st.dictionaries(
            st.one_of(st.text(max_size=3), st.integers(), st.floats(), st.none(), st.booleans()),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(_JSON_VALUES)
def test_to_json_writes_what_json_dumps_writes(document: object) -> None:
    from xavinit.serialize import to_json

    assert to_json(document) == json.dumps(document, indent=2) + "\n"


# lists of flat dicts (check's ranking rows) are encoded in one call and cut at the text "}",
# separator, "{": strings that spell braces, separators and newlines must not fool it
_TRICKY_TEXT = st.lists(
    st.sampled_from(["}", "{", ",", "\n", " ", '"', "\\", "a", ": ", "},\n    {"]), max_size=6
).map("".join)
_FLAT_DICT_LISTS = st.lists(
    st.dictionaries(
        st.one_of(_TRICKY_TEXT, st.integers(), st.none(), st.booleans()),
        st.one_of(_JSON_LEAVES, _TRICKY_TEXT),
        min_size=1,
        max_size=4,
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        _FLAT_DICT_LISTS,
        st.dictionaries(st.text(max_size=3), _FLAT_DICT_LISTS, max_size=2).map(lambda d: [d, [d]]),
    )
)
def test_to_json_writes_lists_of_flat_dicts_as_json_dumps_does(document: object) -> None:
    from xavinit.serialize import to_json

    assert to_json(document) == json.dumps(document, indent=2) + "\n"
