"""One shape for every command: options declared once, typed results validated on load, every
(command, format) pair rendered or refused, and the bugs the old shape had."""

from __future__ import annotations

import csv
import io
import json
import math
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

import xavinit.render as render_registry
from xavinit.cli import app
from xavinit.config import CONFIG_TYPES, InitConfig, TrainConfig
from xavinit.errors import XavinitError
from xavinit.loading import load_result, result_from_dict
from xavinit.render import COMMANDS, FORMATS, RENDERERS

DATA = Path(__file__).parent / "data"
runner = CliRunner()


@pytest.fixture(scope="module")
def saved(tmp_path_factory, module_blobs):
    """One small saved result of every command, made by the commands themselves."""
    folder = tmp_path_factory.mktemp("results")
    weights = folder / "weights.npz"
    rng = np.random.default_rng(0)
    np.savez(
        weights,
        **{"fc.weight": rng.uniform(-0.1, 0.1, (20, 100)), "fc.bias": np.zeros(20)},
        tiny=np.ones(3),
    )
    runs = {
        "init": ["init", "--layers", "20,10,5", "-s", "standard"],
        "propagate": ["propagate", "--layers", "12,8,8,3", "--batch", "50", "-s", "normalized"],
        "train": [
            "train", "-d", f"npz:{module_blobs}", "--depth", "1", "--width", "8",
            "--updates", "20", "--eval-every", "10", "--track-every", "10", "-s", "normalized",
        ],
        "schemes": ["schemes", "--fan-in", "4", "--fan-out", "3"],
        "check": ["check", str(weights), "--expect", "init"],
        "sweep": [
            "sweep", "--dir", str(folder / "sweep"), "-d", f"npz:{module_blobs}", "--depth", "1",
            "--width", "8", "-a", "tanh", "-s", "normalized", "--lr", "0.1", "--updates", "20",
            "--eval-every", "10", "--track-every", "10", "--workers", "1",
        ],
        "gain": ["gain", "tanh", "relu", "--check", "--depth", "3", "--width", "12"],
    }  # fmt: skip
    paths = {}
    for command, args in runs.items():
        path = folder / f"{command}.json"
        result = runner.invoke(app, [*args, "-q", "-o", str(path)])
        assert result.exit_code == 0, (command, result.stderr)
        paths[command] = path
    report = folder / "report.json"
    result = runner.invoke(app, ["report", *map(str, paths.values()), "-q", "-o", str(report)])
    assert result.exit_code == 0, result.stderr
    paths["report"] = report
    return paths


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


def _rendered(result, fmt: str) -> str:
    """``result`` as the command line renders it as ``fmt`` (the table on a plain console)."""
    if fmt != "table":
        return render_registry.render(result, fmt)
    out = io.StringIO()
    console = Console(file=out, width=120, markup=False, emoji=False, color_system=None)
    render_registry.print_table(result, console)
    return out.getvalue()


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_renders_every_format_through_its_own_renderer(command, saved):
    """Each saved result rendered by the function the registry names for its own command (not
    through ``report``): every format gives content of that format."""
    result = load_result(saved[command])
    assert render_registry.formats(command) and set(render_registry.formats(command)) <= set(
        FORMATS
    )
    for fmt in FORMATS:
        target = RENDERERS[(command, fmt)]
        if command != "report":
            assert "report" not in target, (command, fmt, target)
        text = _rendered(result, fmt)
        assert text.strip(), (command, fmt)
        if fmt == "json":
            assert json.loads(text)["command"] == command
        elif fmt == "yaml":
            assert f"command: {command}\n" in text
        elif fmt == "csv":
            rows = list(csv.DictReader(io.StringIO(text)))
            assert rows and any(any(row.values()) for row in rows), command
        elif fmt == "html":
            parser = _Tags()
            parser.feed(text)
            assert {"html", "table"} <= set(parser.tags)
        elif fmt == "markdown":
            assert "|" in text, command  # a table
        else:
            assert "┃" in text or "│" in text, command  # a Rich table


def test_a_pair_not_in_the_registry_is_refused(saved, monkeypatch):
    init = load_result(saved["init"])
    assert not render_registry.supported("init", "pdf")
    assert not render_registry.supported("nosuch", "json")
    with pytest.raises(XavinitError, match=r"^init cannot be rendered as pdf; formats: json, "):
        render_registry.render(init, "pdf")
    monkeypatch.delitem(RENDERERS, ("init", "table"))
    assert "table" not in render_registry.formats("init")
    with pytest.raises(XavinitError, match="init cannot be rendered as table"):
        render_registry.print_table(init, Console(file=io.StringIO()))
    with pytest.raises(XavinitError, match="printed on a console"):
        render_registry.render(load_result(saved["gain"]), "table")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_renders_every_format_with_content(command, fmt, saved, tmp_path):
    """Each saved result, rendered through ``report`` (a report of a report is one too)."""
    source = saved[command]
    result = runner.invoke(app, ["report", str(source), "-f", fmt])
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert text.strip(), (command, fmt)
    if fmt == "json":
        assert json.loads(text)["command"] == "report"
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        assert rows and {"file", "command"} <= set(rows[0])
    elif fmt == "html":
        parser = _Tags()
        parser.feed(text)
        assert {"html", "table"} <= set(parser.tags)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "args",
    [
        ["init", "--layers", "20,10,5"],
        ["propagate", "--layers", "12,8,3", "--batch", "20"],
        ["schemes"],
        ["gain", "tanh", "silu", "--check", "--depth", "3", "--width", "12"],
    ],
    ids=["init", "propagate", "schemes", "gain"],
)
def test_each_command_writes_each_format_directly(args, fmt):
    result = runner.invoke(app, [*args, "-q", "-f", fmt])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip()
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        assert len(rows) >= 2 and all(any(v for v in row.values()) for row in rows)
    if fmt == "json":
        assert json.loads(result.stdout)["command"] == args[0]


def test_train_csv_has_one_row_per_evaluation(module_blobs, tmp_path):
    target = tmp_path / "run.csv"
    args = ["train", "-d", f"npz:{module_blobs}", "--depth", "1", "--width", "8"]
    args += ["--updates", "20", "--eval-every", "10", "-s", "standard", "-s", "normalized"]
    result = runner.invoke(app, [*args, "-q", "-o", str(target)])
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [(r["scheme"], r["update"]) for r in rows] == [
        (s, u) for s in ("standard", "normalized") for u in ("0", "10", "20")
    ]
    assert all(0.0 <= float(r["test_error"]) <= 1.0 for r in rows)


def test_schemes_takes_output_and_html(tmp_path):
    target = tmp_path / "schemes.html"
    result = runner.invoke(app, ["schemes", "-o", str(target)])
    assert result.exit_code == 0, result.stderr
    assert target.read_text().startswith("<!DOCTYPE html>") and "normalized" in target.read_text()
    html = runner.invoke(app, ["schemes", "-f", "html"])
    assert html.stdout.startswith("<!DOCTYPE html>")


def test_a_saved_report_is_read_back(saved, tmp_path):
    again = runner.invoke(app, ["report", str(saved["report"]), "-f", "json"])
    assert again.exit_code == 0, again.stderr
    first = json.loads(saved["report"].read_text())
    assert [d["command"] for d in json.loads(again.stdout)["documents"]] == [
        d["command"] for d in first["documents"]
    ]
    assert load_result(saved["report"]).command == "report"


def test_every_saved_result_round_trips(saved):
    for command, path in saved.items():
        document = json.loads(path.read_text())
        assert load_result(path).to_dict() == document, command


def _init_document() -> dict:
    return json.loads((DATA / "init.json").read_text())


def _train_document() -> dict:
    return json.loads((DATA / "train.json").read_text())


HOSTILE = {
    "string variance": (_init_document, lambda d: d["layers"][0].update(observed_var="abc"), "layers[0].observed_var"),
    "string passed": (_init_document, lambda d: d.update(passed="false"), "passed"),
    "list command": (_init_document, lambda d: d.update(command=["init"]), "unknown command"),
    "string config": (_init_document, lambda d: d.update(config="x"), "config"),
    "curve update": (_train_document, lambda d: d["runs"][0].update(curve=[{"update": "a"}]), "runs[0].curve[0].update"),
    "p-value above 1": (_init_document, lambda d: d["layers"][0].update(p_value=3.0), "layers[0].p_value"),
    "negative layer": (_init_document, lambda d: d["layers"][0].update(layer=0), "layers[0].layer"),
    "bad config value": (_init_document, lambda d: d["config"].update(trials=-1), "config.trials"),
    "unknown config key": (_init_document, lambda d: d["config"].update(trails=2), "config.trails"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_documents_are_refused_naming_the_field(case, tmp_path):
    make, spoil, where = HOSTILE[case]
    document = make()
    spoil(document)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    target = tmp_path / "out.md"
    result = runner.invoke(app, ["report", str(path), "-o", str(target)])
    assert result.exit_code == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and where in lines[0], lines
    assert "Traceback" not in result.stderr and not target.exists()


def test_deep_nesting_is_refused(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000)
    result = runner.invoke(app, ["report", str(path)])
    assert result.exit_code == 2 and "malformed JSON" in result.stderr


def test_non_finite_floats_round_trip_as_floats():
    document = _init_document()
    document["layers"][0]["ci_high"] = "inf"
    document["layers"][0]["rel_error"] = "nan"
    loaded = result_from_dict(document, "doc")
    assert loaded.layers[0].ci_high == math.inf and math.isnan(loaded.layers[0].rel_error)
    assert loaded.to_dict()["layers"][0]["ci_high"] == "inf"
    assert json.loads(json.dumps(loaded.to_dict())) == loaded.to_dict()


def test_each_option_is_declared_once_and_reaches_cli_yaml_and_config(tmp_path):
    """Every declared option is a CLI flag, a YAML key and a config field, with one default."""
    for command, config_type in CONFIG_TYPES.items():
        help_text = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"}).stdout
        for name, opt, _ in config_type.options():
            key = opt.key or name
            if not opt.argument:
                assert "--" + key.replace("_", "-") in help_text, (command, key)
            assert key in config_type.accepted_keys(), (command, key)


def test_yaml_and_flags_go_through_the_same_validation(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("trials: 0\n")
    from_file = runner.invoke(app, ["init", "-c", str(config)])
    from_flag = runner.invoke(app, ["init", "--trials", "0"])
    assert from_file.exit_code == from_flag.exit_code == 2
    assert "run.yaml: trials: must be >= 1" in from_file.stderr
    assert "--trials: must be >= 1" in from_flag.stderr


@pytest.mark.parametrize(("value", "expected"), [("no", False), ("off", False), ("yes", True)])
def test_yaml_booleans(value, expected, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(f"histograms: {value!r}\nquiet: {value!r}\nlayers: 8,4,3\nbatch: 10\n")
    result = runner.invoke(app, ["propagate", "-c", str(config), "-f", "json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["config"]["histograms"] is expected


def test_a_yaml_boolean_that_is_not_one_is_refused(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("quiet: maybe\n")
    result = runner.invoke(app, ["init", "-c", str(config)])
    assert result.exit_code == 2 and "quiet" in result.stderr


def test_an_unsupported_pair_is_refused_before_any_work(monkeypatch, tmp_path):
    monkeypatch.delitem(RENDERERS, ("init", "csv"))
    target = tmp_path / "out.csv"
    saved = tmp_path / "w.npz"
    result = runner.invoke(app, ["init", "--save", str(saved), "-o", str(target)])
    assert result.exit_code == 2
    assert "init cannot be rendered as csv" in result.stderr
    assert not target.exists() and not saved.exists()
    assert set(render_registry.formats("init")) == set(FORMATS) - {"csv"}


def test_checkpoint_configs_go_through_validation():
    good = TrainConfig.from_mapping({"depth": 2, "width": 8})
    record = good.to_dict()
    assert TrainConfig.from_record(record, "ck") == good
    for key, value in [("lr", -5), ("updates", "abc"), ("eval_every", 0), ("dtype", "object")]:
        with pytest.raises(XavinitError, match=rf"ck\.{key}: "):
            TrainConfig.from_record({**record, key: value}, "ck")


def test_layers_forms_and_messages():
    assert InitConfig.from_mapping({"depth": 2, "width": 7}).layers == (1024, 7, 7, 10)
    with pytest.raises(XavinitError, match=r"layers\[2\]: must be an integer >= 1, got -3"):
        InitConfig.from_mapping({"layers": [4, 4, -3]})
    with pytest.raises(XavinitError, match="cannot be combined with depth"):
        InitConfig.from_mapping({"layers": "4,4", "depth": 2})
