"""Fast paths of the renderers give what the slow ones gave: long Rich tables, the sanitiser."""

from __future__ import annotations

import dataclasses
import io
import math
import random

from hypothesis import example, given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table
from rich.text import Text

from xavinit.render.longtable import LONG_TABLE, _Body, _simple, print_table_fast
from xavinit.text import _printable_copy, printable_strings


def _table(rows: int, seed: int) -> Table:
    """Names that fold, words longer than a column, styled and empty cells, three justifications,
    non-ASCII widths (CJK takes two cells)."""
    rng = random.Random(seed)
    table = Table(title="init: many tensors", title_justify="left", title_style="bold",
                  caption="a caption", caption_justify="left")  # fmt: skip
    table.add_column("tensor", overflow="fold")
    table.add_column("shape", no_wrap=True, justify="right")
    table.add_column("p", justify="center")
    table.add_column("reason", overflow="fold")
    parts = ["layers", "attn", "q_proj", "weight", "層", "x" * 70]
    for _ in range(rows):
        name = ".".join(rng.choice(parts) for _ in range(rng.randint(1, 5)))
        reason = rng.choice(
            ["", "fits", "word " * rng.randint(0, 20), "  lead", Text("ok", style="green"),
             Text("✗ too big " * rng.randint(1, 8), style="bold red")]
        )  # fmt: skip
        shape = f"{rng.randint(1, 5000)}×{rng.randint(1, 9)}"
        table.add_row(name, shape, rng.choice(["0.5", "1e-300", "-"]), reason)
    return table


def _characters(console: Console, renderable: object) -> list[tuple[str, object]]:
    """Every character Rich writes with its style (no style and the null style alike)."""
    return [
        (char, segment.style or None)
        for segment in console.render(renderable, console.options)
        for char in segment.text
    ]


def test_a_long_table_is_rich_s_own_table_character_and_style():
    for width in (50, 80, 200):
        for terminal in (False, True):
            console = Console(
                file=io.StringIO(), width=width, force_terminal=terminal,
                color_system="truecolor" if terminal else None, markup=False, emoji=False,
            )  # fmt: skip
            table = _table(LONG_TABLE, seed=width)
            assert _simple(table)
            assert _characters(console, _Body(table)) == _characters(console, table)


def test_cells_that_wrap_are_wrapped_as_rich_wraps_them():
    """Wrapped cells written here (not through Rich) for every justification and overflow:
    words folded, cropped or cut with an ellipsis, spaces at the breaks, double-width
    characters, styled Text, a column too narrow for its words."""
    rng = random.Random(5)
    words = ["a", "bb", "ccc", "word", "x" * 23, "層層層", "  ", "é", "p=0.5;", "-"]
    for width in (40, 61, 97):
        table = Table(title="wraps")
        for justify, overflow in [("left", "fold"), ("right", "ellipsis"),
                                  ("center", "crop"), ("left", "ellipsis")]:  # fmt: skip
            table.add_column(f"{justify} {overflow}", justify=justify, overflow=overflow)
        for _ in range(LONG_TABLE):
            cells = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 14)))
                     for _ in range(4)]  # fmt: skip
            cells[rng.randrange(4)] = Text(cells[0], style="bold")
            table.add_row(*cells)
        console = Console(file=io.StringIO(), width=width, force_terminal=True,
                          color_system="truecolor", markup=False, emoji=False)  # fmt: skip
        assert _simple(table)
        assert _characters(console, _Body(table)) == _characters(console, table)


def test_print_table_fast_prints_what_rich_prints():
    table = _table(LONG_TABLE + 5, seed=1)
    ours, theirs = io.StringIO(), io.StringIO()
    print_table_fast(Console(file=ours, width=90), table)
    Console(file=theirs, width=90).print(table)
    assert ours.getvalue() == theirs.getvalue()
    assert ours.getvalue().count("\n") > LONG_TABLE


def test_tables_it_cannot_lay_out_are_left_to_rich():
    table = _table(3, seed=2)
    table.show_lines = True
    assert not _simple(table)
    table = _table(3, seed=2)
    table.row_styles = ["dim", ""]
    assert not _simple(table)


_TEXT = st.text(st.characters(codec="utf-8") | st.sampled_from("\x1b\n\r\t\x85\u2028\\bn"))
_DATA = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _TEXT,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(_TEXT | st.integers(), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=100, deadline=None)
@given(_DATA)
def test_the_sanitiser_s_shortcut_changes_nothing(data):
    """Data returned as it is must be what the copy would have been; anything else is copied."""
    copy = _printable_copy(data)
    result = printable_strings(data)
    assert repr(result) == repr(copy)


def test_the_sanitiser_finds_a_control_character_deep_in_rows():
    rows = [{"name": f"t{k}", "candidates": [{"scheme": "a", "p": 0.5}] * 3} for k in range(50)]
    document = {"tensors": rows}
    assert printable_strings(document) is document
    rows[31]["candidates"] = [{"scheme": "a\x1b[2J", "p": 0.5}]
    assert printable_strings(document)["tensors"][31]["candidates"][0]["scheme"] == "a\\x1b[2J"
    rows[31]["candidates"] = [{"sch\neme": "a"}]
    assert list(printable_strings(document)["tensors"][31]["candidates"][0]) == ["sch\\neme"]


def _libyaml(document: object) -> str:
    import yaml

    return yaml.dump(
        document, Dumper=yaml.CSafeDumper, sort_keys=False, allow_unicode=True,
        default_flow_style=False,
    )  # fmt: skip


_WORDS = st.sampled_from(
    ["a", "bb", "x" * 30, "y" * 90, "it's", "p=0.5;", "1e-05", "1.5", "0x1F", "2001-01-01", "~",
     "<<", "=", "- a", "? b", "!t", "&a", "*a", "%", "@", '"q"', "a #b", "a: b", "[x]", ",", "\t",
     "\n", "\x1b", "\x85", "\u2028", "\xa0", "yes", "null", "Off", "-", "a:b", "é", "層", "'q'",
     ":", ""]
)  # fmt: skip
_STRINGS = st.lists(_WORDS, max_size=25).map(" ".join) | st.text(" ab'-:#\n", max_size=6)
_YAML_DATA = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _STRINGS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(_STRINGS | st.integers() | st.booleans(), inner, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_STRINGS, _YAML_DATA, min_size=1, max_size=4))
def test_yaml_is_libyaml_s_text_character_for_character(document):
    """Folding past column 80 at every depth, quoting, floats, empty containers, odd keys."""
    from xavinit.serialize import to_yaml

    assert to_yaml(document) == _libyaml(document)


def test_a_check_like_document_takes_the_fast_yaml_path():
    from xavinit.serialize import _YamlWriter

    reason = "standard (PyTorch's nn.Linear default), p=0.028; runner-up xavier-normal, p=2.7e-05"
    rows = [
        {"name": f"layers.{k}.weight", "shape": [8, 8], "p_value": 0.1 / (k + 1), "note": "",
         "reason": reason * (k % 3), "candidates": [{"scheme": "he-normal", "score": 1e-300}],
         "groups": None, "matches": k % 2 == 0, "counts": {}}
        for k in range(30)
    ]  # fmt: skip
    document = {"command": "check", "version": "0.1.0", "tensors": rows, "failures": []}
    assert _YamlWriter().document(document) == _libyaml(document)


def test_a_shared_list_keeps_yaml_dump_s_anchor():
    from xavinit.serialize import to_yaml

    shared = [1, 2]
    assert to_yaml({"a": shared, "b": shared}) == "a: &id001\n- 1\n- 2\nb: *id001\n"


_ROW_STRINGS = st.lists(
    st.sampled_from(["a", "bb", "x" * 30, "y" * 90, "it's", "p=0.5;", "1e-05", "1.5", "~", "<<",
                     "yes", "null", "Off", "-", "a:b", "é", "層", "'q'", ":", "", "a #b", "a: b",
                     "[x]", "- a", "uniform:a=0.61854"]),
    max_size=25,
).map(" ".join)  # fmt: skip
_LEAF = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0.0, -0.0, 1e-05, -2e16, 1.5e-300, 0.125, 1, True, 0, False])
    | _ROW_STRINGS
)  # fmt: skip
_ROW_KEYS = st.sampled_from(
    [("scheme", "score"), ("a b", "yes", "x" * 70, "p"), ("name", "shape", "candidates")]
)


def _rows(keys: tuple[str, ...], values: st.SearchStrategy) -> st.SearchStrategy:
    return st.lists(st.fixed_dictionaries({k: values for k in keys}), min_size=2, max_size=6)


_INNER = _ROW_KEYS.flatmap(lambda keys: _rows(keys, _LEAF))
_CELL = _LEAF | st.lists(_LEAF, max_size=3) | _INNER | st.builds(list) | st.builds(dict)
_TABLE = _ROW_KEYS.flatmap(lambda keys: _rows(keys, _CELL))


@settings(max_examples=80, deadline=None)
@given(st.dictionaries(_ROW_STRINGS.filter(lambda key: len(key) < 100),
                       _TABLE | st.lists(_TABLE, min_size=1, max_size=2),
                       min_size=1, max_size=3))  # fmt: skip
def test_yaml_rows_written_a_column_at_a_time_are_libyaml_s_text(document):
    """Lists of mappings with one key order (check's tensors and their candidates) take the
    column-at-a-time path: numbers formatted together (exponents, -0.0, True beside 1), strings
    folded or quoted at their column, nested rows and lists of scalars flattened, empties."""
    from xavinit.serialize import _YamlWriter

    assert _YamlWriter().document(document) == _libyaml(document)


_POOL = st.sampled_from(
    [0.0, -0.0, 1e-300, 5e-324, 1e-05, 2e16, -2.5e-07, 0.125, 1, 0, 1.0, True, False, None,
     float("nan"), float("inf"), -float("inf"), "1.0", "1e-05", "yes", "null", "0.5", "", "a"]
) | st.floats()  # fmt: skip


@settings(max_examples=25, deadline=None)
@given(st.lists(_POOL, min_size=1, max_size=6), st.integers(0, 2**32 - 1), st.integers(1, 4))
@example(pool=[0.0, -0.0, 1e-05], seed=0, runs=2)
@example(pool=[1, True, 1.0, 2], seed=1, runs=3)
@example(pool=[1e-300, float("nan"), 0.5], seed=2, runs=2)
def test_long_columns_of_few_values_keep_libyaml_s_text(pool, seed, runs):
    """Columns longer than the sample that decides whether to look values up (1,024 values),
    drawn from a few leaves: -0.0 beside 0.0, 1 beside 1.0 and True, NaN and infinities,
    exponents without a point, strings that read as numbers, booleans or null; the repeats
    start before or after the sample ends."""
    from xavinit.serialize import _SAMPLE, _YamlWriter

    rng = random.Random(seed)
    head = [{"score": rng.choice(pool[:runs]), "p": rng.choice(pool)} for _ in range(_SAMPLE - 8)]
    rows = head + [{"score": rng.choice(pool), "p": rng.choice(pool)} for _ in range(40)]
    document = {"rows": rows}
    assert _YamlWriter().document(document) == _libyaml(document)


def test_rows_with_other_keys_or_another_order_are_not_written_as_columns():
    """Rows of the same keys in another order, a row with a key more or less: each written as
    its own mapping (a column is a slice of all the rows' values only when every row has the
    first row's keys in its order)."""
    from xavinit.serialize import _row_keys, to_yaml

    for rows in (
        [{"a": 1, "b": 2.5}, {"b": 3.5, "a": 4}],
        [{"a": 1}, {"a": 2, "b": 3}],
        [{"a": 1, "b": 2}, {"a": 3}],
        [{"a": 1, "b": 2}, {"a": 3, "c": 4}],
    ):
        assert _row_keys(rows) is None
        assert to_yaml({"rows": rows}) == _libyaml({"rows": rows})
    assert _row_keys([{"a": 1, "b": 2}, {"a": 3, "b": 4}]) == ("a", "b")


def test_the_plain_string_pattern_is_libyaml_s_choice():
    """Strings with ``:`` and spaces in every position, the characters at either end: the
    fast test of a plain string (one character class and no ``: ``) says what libyaml does."""
    import itertools

    from xavinit.serialize import _NotPlainError, _yaml_style

    alphabet = ["a", "Z", "7", ":", " ", "_", ".", "'", "-", "#", ")", "="]
    for size in (1, 2, 3, 4):
        for letters in itertools.product(alphabet, repeat=size):
            text = "".join(letters)
            try:
                plain = _yaml_style(text)
            except _NotPlainError:
                continue  # a string only yaml.dump writes (double-quoted)
            assert plain == (_libyaml(text) in (text + "\n", text + "\n...\n")), text


def test_check_rows_take_the_column_path_and_keep_libyaml_s_text():
    """A check-shaped document (rows of one key order, candidate rows inside them, a long
    reason that folds) is written by the fast writer, column by column, as libyaml writes it;
    a candidate row shared by two tensors is an anchor, as yaml.dump writes it."""
    from xavinit.serialize import _YamlWriter, to_yaml

    reason = "standard (PyTorch's nn.Linear default), p=0.028; runner-up xavier-normal, p=2.7e-05"
    rows = [
        {"name": f"layers.{k}.weight", "shape": [8, 8 + k], "p_value": [0.1 / (k + 1), None][k % 2],
         "reason": reason * (k % 3), "groups": None if k else [1, 2], "counts": {},
         "candidates": [{"scheme": s, "score": 2e-05 * k, "explains": k % 2 == 0, "n": k}
                        for s in ["he-normal", "uniform:a=0.5", "it's"][: k % 4]]}
        for k in range(9)
    ]  # fmt: skip
    document = {"command": "check", "tensors": rows, "failures": []}
    writer = _YamlWriter()
    assert writer.document(document) == _libyaml(document)
    assert writer.strings  # the columns of strings went through the column path
    rows[2]["candidates"][1] = rows[1]["candidates"][0]
    assert to_yaml(document) == _libyaml(document)
    assert "&id001" in to_yaml(document)


def test_csv_rows_are_dictwriter_s_text_without_check_s_candidates(tmp_path):
    """check's CSV (built without copying the candidate rows) and a nested document's are the
    text csv.DictWriter writes for the document's rows: cells quoted, None empty, lists joined
    with ';', dicts as compact JSON, infinities as their strings, columns in the order they
    first occur."""
    import csv as csvlib
    import json

    import numpy as np
    from safetensors.numpy import save_file

    from xavinit.experiments.check import check_weights
    from xavinit.render.data import render_csv
    from xavinit.results import GainResult

    rng = np.random.default_rng(3)
    path = tmp_path / "odd.safetensors"
    save_file(
        {
            'blocks.0,"q"\nproj.weight': rng.uniform(-0.2, 0.2, (16, 12)).astype(np.float32),
            "norm.weight": np.ones(40, dtype=np.float32),
            "tiny.bias": rng.normal(0.0, 1.0, 6).astype(np.float32),
        },
        str(path),
    )
    nested = GainResult(seed=0, config={}, passed=True, gains=[
        {"activation": "tanh", "gain": 1.5, "extra": {"a": [1, 2]}, "tags": ["x", "y,z"]},
        {"activation": "relu", "gain": float("inf"), "note": 'say "hi"', "tags": None},
    ])  # fmt: skip

    def cell(value):
        if isinstance(value, dict):
            return json.dumps(value, separators=(",", ":"))
        if isinstance(value, list):
            return ";".join(str(v) for v in value)
        return "" if value is None else value

    for result, rows in [
        (check_weights(path), None),
        (nested, [dict(row) for row in nested.to_dict()["gains"]]),
    ]:
        if rows is None:
            rows = [{k: v for k, v in t.items() if k != "candidates"}
                    for t in result.to_dict()["tensors"]]  # fmt: skip
        columns: list[str] = []
        for row in rows:
            columns.extend(k for k in row if k not in columns)
        expected = io.StringIO()
        writer = csvlib.DictWriter(expected, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: cell(row.get(k)) for k in columns} for row in rows)
        assert render_csv(result) == expected.getvalue()
    names = [row["name"] for row in csvlib.DictReader(io.StringIO(render_csv(check_weights(path))))]
    assert names[0] == 'blocks.0,"q"\\nproj.weight'  # a comma and quotes in a cell


def _odd_check_result(folder, seed, **candidate):
    """A real check of three 12x10 tensors, then: the first tensor's NaN and infinite fields,
    its shape a tuple, its first candidate row changed by ``candidate`` and shared with the
    second tensor, the first tensor listed twice."""
    import numpy as np
    from safetensors.numpy import save_file

    from xavinit.experiments.check import check_weights

    rng = np.random.default_rng(seed)
    path = folder / "m.safetensors"
    save_file({f"l{k}.weight": rng.uniform(-0.3, 0.3, (12, 10)).astype(np.float32)
               for k in range(3)}, str(path))  # fmt: skip
    result = check_weights(path)
    first, second, third = result.tensors
    shared = dict(first.candidates[0], **candidate)
    odd = dataclasses.replace(
        first, observed_var=math.nan, p_value=math.inf, shape=tuple(first.shape),
        candidates=[shared, *first.candidates[1:]],
    )  # fmt: skip
    second = dataclasses.replace(second, candidates=[shared, *second.candidates])
    return dataclasses.replace(result, tensors=[odd, second, third, odd])


def test_check_yaml_written_from_the_result_s_own_objects_is_the_copy_s_text(tmp_path):
    """render_yaml writes a check result from its own objects (no plain() copy): the text of
    to_yaml(result.to_dict()) with NaN and infinities as their strings, a tuple as a list, and
    a tensor or candidate row that occurs twice written twice (the copy has no shared object),
    and what yaml.safe_load reads back is the document."""
    import yaml

    from xavinit.render.data import render_yaml
    from xavinit.serialize import to_yaml, yaml_of_fields

    result = _odd_check_result(tmp_path, 4, score=-math.inf, known_as="it's: odd")
    expected = to_yaml(result.to_dict())
    assert "&id" not in expected and "nan" in expected and "-inf" in expected
    fields = {"schema_version": 1, "xavinit_version": result.xavinit_version,
              "command": "check", **vars(result)}  # fmt: skip
    assert yaml_of_fields(fields) is not None  # the fast writer, not yaml.dump
    assert render_yaml(result) == expected
    assert yaml.safe_load(render_yaml(result)) == result.to_dict()


def test_check_json_written_from_the_result_s_own_objects_is_the_copy_s_text(tmp_path):
    """render_json writes a result from its own objects (no plain() copy): the text of
    to_json(result.to_dict()), i.e. json.dumps(indent=2) of the copy, with NaN and infinities
    as their strings (in a tensor's fields and in a candidate row), a tuple as a list, and a
    row that occurs twice written twice; init's rows (dataclasses) likewise."""
    import json

    from xavinit.render.data import render_json
    from xavinit.results import InitCheck, InitResult
    from xavinit.serialize import to_json

    result = _odd_check_result(
        tmp_path, 5, score=-math.inf, p_value=math.nan, known_as='é "q"'
    )  # fmt: skip
    expected = to_json(result.to_dict())
    assert expected == json.dumps(result.to_dict(), indent=2) + "\n"
    assert '"NaN"' not in expected and '"nan"' in expected and '"-inf"' in expected
    assert render_json(result) == expected

    row = InitCheck(scheme="normalized", layer=1, fan_in=4, fan_out=3, distribution="uniform",
                    expected_var=0.25, observed_var=math.inf, rel_error=math.nan, ci_low=0.2,
                    ci_high=0.3, p_value=1e-300, passed=False, bound=0.5, ks_p_value=None,
                    count=12)  # fmt: skip
    init = InitResult(seed=0, config={"layers": (4, 3)}, passed=False,
                      layers=[row, dataclasses.replace(row, observed_var=0.25), row],
                      alpha=0.01, correction="holm")  # fmt: skip
    assert render_json(init) == to_json(init.to_dict())


@dataclasses.dataclass(frozen=True)
class _Row:
    name: str
    value: object


_VIEWED = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=3) | st.integers(), inner, max_size=4)
        | st.builds(_Row, st.text(max_size=3), inner)
        | st.lists(st.builds(_Row, st.text(max_size=3), inner), min_size=1, max_size=3)
        | st.lists(st.fixed_dictionaries({"a": st.floats(), "b": st.text(max_size=2)}),
                   min_size=1, max_size=3)
    ),
    max_leaves=25,
)  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=4), _VIEWED, min_size=1, max_size=4))
@example({"flat": math.nan, "b": 1})
@example({"list": [math.inf, [1], -math.inf]})
@example({"dict": {"x": -math.inf, "y": [1], "z": math.nan}})
@example({"rows": [_Row("x", math.nan), _Row("y", 1.5)], "row": _Row("z", (math.inf,))})
@example({"tuple": (math.nan, 1), "ranking": [{"a": math.nan, "b": "x"}, {"a": 0.5, "b": "y"}]})
def test_json_of_fields_is_to_json_of_the_plain_copy(document):
    """Dataclasses (alone and as lists of rows), tuples, non-finite floats in runs of scalars,
    flat dicts and lists of them, keys json converts: the text of to_json(plain(document))."""
    from xavinit.serialize import json_of_fields, plain, to_json

    assert json_of_fields(document) == to_json(plain(document))
