"""Hostile names and damaged results on their way to people (issue 20, second pass): a name
read from a file reaches the terminal table, Markdown and HTML as one line of visible text,
shown literally; saved results the fuzzers broke are refused with one line (or rendered); a
figure folder a failed write leaves half-filled is removed, what was there before kept."""

from __future__ import annotations

import errno
import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from xavinit.cli import app

runner = CliRunner()

HOSTILE = "[bold red]boom[/]\x1b[2J|cell\nrow<script>x</script>"
"""Rich markup, a terminal escape (clear screen), a Markdown cell separator, a newline and HTML."""


def ran(args: list[str], codes=(0, 1)) -> str:
    result = runner.invoke(app, args, env={"COLUMNS": "400"})  # a name on one line of a cell
    assert result.exit_code in codes, (result.exit_code, result.stdout, result.stderr)
    return result.stdout


def refused(args: list[str], match: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and match in lines[0], result.stderr


def _assert_shown_literally(text: str, fmt: str) -> None:
    """The hostile name is there, escaped for ``fmt``, and nothing of it acts."""
    assert "\x1b" not in text and "\\x1b[2J" in text  # the escape shown, not sent
    assert "\nrow" not in text and "\\nrow" in text  # one line
    if fmt == "table":
        assert "[bold red]boom[/]" in text  # markup shown as it is, not applied
    if fmt == "markdown":
        assert "<script>" in text  # (Markdown is text; a viewer escapes HTML itself)
        rows = [line for line in text.splitlines() if "boom" in line and line.startswith("|")]
        assert rows and all("\\|cell" in line for line in rows)
        for line in rows:  # the row has as many cells as its table's header
            header = next(h for h in text.split("\n\n") if line in h.splitlines()).splitlines()[0]
            assert line.replace("\\|", "").count("|") == header.replace("\\|", "").count("|")
    if fmt == "html":
        assert "<script>" not in text and "&lt;script&gt;" in text


@pytest.fixture(scope="module")
def hostile_results(tmp_path_factory):
    """A check of an npz holding a tensor with the hostile name, and a propagate through a file
    whose name is hostile (its label in the result), saved as JSON."""
    folder = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(0)
    np.savez(folder / "w.npz", **{HOSTILE: rng.uniform(-0.2, 0.2, (40, 30)).astype(np.float32)})
    ran(["check", str(folder / "w.npz"), "-q", "-o", str(folder / "check.json")])
    weights = folder / "stack [bold]|x.npz"
    np.savez(weights, a=rng.normal(0, 0.3, (6, 5)).astype(np.float32))
    ran(["propagate", "--weights", str(weights), "-q", "-o", str(folder / "prop.json")])
    return folder


@pytest.mark.parametrize("fmt", ["table", "markdown", "html"])
def test_a_hostile_tensor_name_is_shown_literally_in_every_format(hostile_results, fmt):
    folder = hostile_results
    _assert_shown_literally(ran(["check", str(folder / "w.npz"), "-q", "-f", fmt]), fmt)
    _assert_shown_literally(ran(["report", str(folder / "check.json"), "-q", "-f", fmt]), fmt)


@pytest.mark.parametrize("fmt", ["table", "markdown"])  # (HTML draws figures: slow)
def test_a_hostile_weights_file_name_is_shown_literally(hostile_results, fmt):
    text = ran(["report", str(hostile_results / "prop.json"), "-q", "-f", fmt])
    shown = "stack [bold]|x.npz" if fmt == "table" else "stack [bold]\\|x.npz` | tanh |"
    assert shown in text


# --- saved results the fuzzers broke ------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved")
    ran(["init", "--layers", "8,8", "-q", "-o", str(folder / "init.json")])
    ran(["gain", "relu", "--check", "--depth", "3", "--width", "20", "-q",
         "-o", str(folder / "gain.json")])  # fmt: skip
    ran(["schemes", "-q", "-o", str(folder / "schemes.json")])
    ran(["report", str(folder / "init.json"), str(folder / "gain.json"), "-q",
         "-o", str(folder / "report.json")])  # fmt: skip
    return folder


def _edit(folder: Path, name: str, edit, suffix: str = "") -> str:
    document = json.loads((folder / name).read_text())
    edit(document)
    target = folder / f"edited{suffix}-{name}"
    target.write_text(json.dumps(document))
    return str(target)


@pytest.mark.parametrize(
    ("name", "edit", "match"),
    [
        ("gain.json", lambda d: d["depth_checks"][0]["interval"].append(4.0),
         "depth_checks[0].interval: list should have at most 2 items"),
        ("gain.json", lambda d: d["depth_checks"][0]["interval"].pop(),
         "depth_checks[0].interval: list should have at least 2 items"),
        ("report.json", lambda d: d["documents"][1].pop("file"), "documents[1].file: must be"),
        ("report.json", lambda d: d["documents"][0].update(file=3), "documents[0].file: must be"),
        ("schemes.json", lambda d: d["schemes"][1].pop("formula"),
         "schemes[1].formula: field required"),
        ("schemes.json", lambda d: d["schemes"][0].pop("aliases"),
         "schemes[0].aliases: field required"),
    ],
)  # fmt: skip
def test_a_damaged_result_is_refused_by_its_field(saved, name, edit, match):
    for fmt in ("table", "markdown", "html"):
        refused(["report", _edit(saved, name, edit), "-q", "-f", fmt], match)


def test_a_report_document_is_read_back_with_its_defaults(saved):
    # a field with a default, left out of an included document, is filled in, not a KeyError
    path = _edit(saved, "report.json", lambda d: d["documents"][0]["layers"][0].pop("fan_in_var"))
    for fmt in ("table", "markdown", "html"):
        ran(["report", path, "-q", "-f", fmt])


def test_a_saved_non_finite_number_is_shown_not_a_crash(saved):
    path = _edit(
        saved, "gain.json", lambda d: d["gains"][0].update(second_moment="inf", chi1="nan")
    )
    for fmt in ("table", "markdown", "html"):
        assert "inf" in ran(["report", path, "-q", "-f", fmt])


def test_an_onnx_conv_whose_weight_is_one_dimensional_is_one_line(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones(4, np.float32), "W")  # a Conv weight of rank 1
    bias = numpy_helper.from_array(np.zeros(4, np.float32), "B")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "W", "B"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], [weight, bias],
    )  # fmt: skip
    onnx.save(helper.make_model(graph), tmp_path / "m.onnx")
    result = runner.invoke(app, ["check", str(tmp_path / "m.onnx"), "-q"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in (0, 1, 2) and "Traceback" not in result.stderr
    if result.exit_code == 2:
        assert len(result.stderr.strip().splitlines()) == 1


# --- a figure folder a failed write leaves ------------------------------------------------------


@contextmanager
def _disk_full_after(writes: int):
    """``atomic_write`` whose stream raises ENOSPC from the ``writes``-th write on, as a full
    disk does: the real writer's handling of it is what is tested."""
    from xavinit import fileio

    real = fileio.atomic_write
    count = {"n": 0}

    @contextmanager
    def full(path, mode="w"):
        with real(path, mode) as stream:

            class Full:
                def write(self, data):
                    count["n"] += 1
                    if count["n"] >= writes:
                        raise OSError(errno.ENOSPC, "No space left on device")
                    return stream.write(data)

            yield Full()

    yield full


@pytest.fixture
def figures_input(tmp_path):
    pytest.importorskip("matplotlib")
    ran(["init", "--layers", "8,8", "-q", "-o", str(tmp_path / "init.json")])
    return tmp_path / "init.json"


@pytest.mark.parametrize("writes", [2])  # the second file fails: the first one is removed
def test_a_full_disk_leaves_no_figure_folder_it_created(figures_input, tmp_path, monkeypatch,
                                                         writes):  # fmt: skip
    from xavinit.render.plots import files

    with _disk_full_after(writes) as full:
        monkeypatch.setattr(files, "atomic_write", full)
        refused(["report", str(figures_input), "-q", "--plots", str(tmp_path / "figs"),
                 "-o", str(tmp_path / "r.md")], "No space left on device")  # fmt: skip
    assert not (tmp_path / "figs").exists()
    assert not (tmp_path / "r.md").exists()


def test_a_full_disk_keeps_the_folder_and_files_that_were_there(figures_input, tmp_path,
                                                                monkeypatch):  # fmt: skip
    from xavinit.render.plots import files

    mine = tmp_path / "figs"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with _disk_full_after(2) as full:
        monkeypatch.setattr(files, "atomic_write", full)
        refused(["report", str(figures_input), "-q", "--plots", str(mine)],
                "No space left on device")  # fmt: skip
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    assert (mine / "notes.txt").read_text() == "mine"
