"""Text encodings of documents: JSON and YAML, and the one encoding of non-finite floats.

A result may hold ``inf`` or ``nan`` (a diverged run's cost, a ratio over a zero variance).
Standard JSON has no such numbers, so they are written as the strings ``"inf"``, ``"-inf"``
and ``"nan"`` in JSON and YAML alike, and read back as floats wherever the field is a number
(:data:`NONFINITE_STRINGS`). YAML is read with ``yaml.safe_load`` only: nothing in a file is ever
executed or constructed beyond plain data.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import re
from collections.abc import Callable
from itertools import accumulate, chain, repeat
from typing import Any

from xavinit.errors import XavinitError
from xavinit.text import is_dataclass_type, printable

NONFINITE_STRINGS = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
"""The strings that stand for non-finite floats in a saved document."""

MAX_QUOTE = 200
"""At most this many characters of a bad value are quoted in an error message."""


def quote(value: Any, limit: int = MAX_QUOTE) -> str:
    """A bounded ``repr(value)`` of at most ``limit`` characters: nested and long values are
    abbreviated before they are formatted, so a hostile value (a YAML alias bomb, a 10^6-long
    list) cannot flood a message or take time to print."""
    import reprlib

    short = reprlib.Repr()
    short.maxlevel, short.maxlist, short.maxtuple, short.maxdict = 3, 8, 8, 8
    short.maxstring = short.maxother = short.maxlong = limit
    text = short.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def encode_nonfinite(value: Any) -> Any:
    """A copy of ``value`` with every non-finite float replaced by its string (see module doc)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: encode_nonfinite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode_nonfinite(v) for v in value]
    return value


def decode_nonfinite(value: Any) -> Any:
    """``"inf"``, ``"-inf"`` or ``"nan"`` as a float; anything else unchanged."""
    if isinstance(value, str) and value in NONFINITE_STRINGS:
        return NONFINITE_STRINGS[value]
    return value


def to_json(document: Any) -> str:
    """A document as indented JSON text (non-finite floats already encoded as strings):
    ``json.dumps(document, indent=2)`` and a newline, character for character.

    Containers are laid out here; each run of consecutive scalar items of one container is
    encoded by json's C encoder in one call, whose item separator ``",\n" + indent`` carries
    the indentation (``indent=2`` makes json use its pure-Python encoder, 2.5x slower on the
    130 MB of ``check`` on 20,000 tensors). No list of per-token strings is kept for the whole
    document (``json.dumps`` of it held 27 million strings and 700 MB), only these runs' texts.
    """
    pieces: list[str] = []
    _json_pieces(document, 0, pieces)
    pieces.append("\n")
    return "".join(pieces)


def json_of_fields(document: dict[str, Any]) -> str:
    """A result's document written from the result's own objects (``document``: its fields in
    :meth:`to_dict`'s order, the values not copied), the text ``to_json(plain(document))``
    gives: a dataclass written as its fields, a tuple as a list, a non-finite float as its
    string. A run of scalars goes to json's C encoder as it is, with non-finite floats refused
    (``allow_nan=False``): one that holds any is encoded as :func:`plain` copies it. Copying a
    check of 5,000 tensors (75,000 candidate rows) was a third of its JSON."""
    pieces: list[str] = []
    _json_pieces(document, 0, pieces, copies=True)
    pieces.append("\n")
    return "".join(pieces)


_SCALARS = frozenset({str, int, float, bool, type(None)})
"""Types json encodes without recursion (exact types: a subclass goes the general way)."""
_DICT = {dict}
_STR_KEYS = {str}


@functools.lru_cache(maxsize=64)
def _run_encoder(depth: int, strict: bool = False) -> Callable[[Any], str]:
    """A compact C encoder whose item separator starts a new line at ``depth``'s indentation
    (``strict``: it refuses non-finite floats, ValueError)."""
    return json.JSONEncoder(separators=(",\n" + "  " * depth, ": "), allow_nan=not strict).encode


def _encoded(encode: Callable[[Any], str], value: Any, copies: bool) -> str:
    """``encode(value)``; with ``copies`` (a strict encoder), a value holding a non-finite
    float is encoded as :func:`plain` copies it."""
    if not copies:
        return encode(value)
    try:
        return encode(value)
    except ValueError:
        return encode(plain(value))  # an integer past the digit limit: raises again, as before


def _json_view(value: Any) -> Any:
    """``value`` as :func:`plain` copies it, one level: a dataclass's fields (its own dict), a
    tuple as a list, a non-finite float as its string; what plain() copies otherwise, copied."""
    kind: Any = type(value)
    if kind in _SCALARS or kind is dict or kind is list:
        return value if kind is not float or value - value == 0 else encode_nonfinite(value)
    if kind is tuple:
        return list(value)
    if is_dataclass_type(kind):
        return vars(value)
    return plain(value)


def _json_pieces(value: Any, depth: int, out: list[str], copies: bool = False) -> None:
    """Append the text of ``value`` at nesting ``depth`` as ``json.dumps(indent=2)`` writes it
    (``copies``: of ``plain(value)``, see :func:`json_of_fields`)."""
    if copies:
        value = _json_view(value)
        kinds: Any = set(map(type, value)) if type(value) is list else ()
        if len(kinds) == 1 and is_dataclass_type(next(iter(kinds))):
            value = list(map(vars, value))  # a result's rows (init's layers) as mappings
    is_dict = isinstance(value, dict)
    if not (is_dict or isinstance(value, (list, tuple))) or not value:
        out.append(json.dumps(value))  # a scalar, [] or {}: the same text with or without indent
        return
    if (
        is_dict
        and set(map(type, value)) != _STR_KEYS  # all keys strings: no need to look further
        and not all(type(key) is str for key, item in value.items() if type(item) not in _SCALARS)
    ):
        text = json.dumps(plain(value) if copies else value, indent=2)  # a container under a
        # key json converts (1, None)
        out.append(text.replace("\n", "\n" + "  " * depth) if depth else text)
        return
    inner = "\n" + "  " * (depth + 1)
    encode = _run_encoder(depth + 1, copies)
    out.append("{" if is_dict else "[")
    if is_dict and _SCALARS.issuperset(map(type, value.values())):
        # a flat dict (a ranking row): one call, with the C encoder's key conversions (json's)
        out.append(inner + _encoded(encode, value, copies)[1:-1])
    elif is_dict:
        run: dict[str, Any] = {}
        separator = inner
        for key, item in value.items():
            if type(item) in _SCALARS:
                run[key] = item
                continue
            if run:
                out.append(separator + _encoded(encode, run, copies)[1:-1])
                run, separator = {}, "," + inner
            out.append(separator + json.dumps(key) + ": ")
            separator = "," + inner
            _json_pieces(item, depth + 1, out, copies)
        if run:
            out.append(separator + _encoded(encode, run, copies)[1:-1])
    elif _flat_dicts(value):
        out.append(_flat_dict_list(value, depth, copies))
    else:
        items: list[Any] = []
        separator = inner
        for item in value:
            if type(item) in _SCALARS:
                items.append(item)
                continue
            if items:
                out.append(separator + _encoded(encode, items, copies)[1:-1])
                items, separator = [], "," + inner
            out.append(separator)
            separator = "," + inner
            _json_pieces(item, depth + 1, out, copies)
        if items:
            out.append(separator + _encoded(encode, items, copies)[1:-1])
    out.append("\n" + "  " * depth + ("}" if is_dict else "]"))


def _flat_dicts(items: Any) -> bool:
    """Whether every item is a non-empty dict of scalars (``check``'s ranking rows)."""
    return (
        set(map(type, items)) == _DICT
        and all(items)
        and _SCALARS.issuperset(map(type, chain.from_iterable(map(dict.values, items))))
    )


def _flat_dict_list(items: Any, depth: int, copies: bool = False) -> str:
    """A list of flat dicts (:func:`_flat_dicts`) at ``depth``, without its closing bracket,
    from one call of the C encoder whose separator ``",\n" + indent`` (``depth + 1``) lays out
    every item of every dict; each boundary between two dicts, ``}`` separator ``{``, becomes
    the indented ``},`` and ``{`` lines. The boundary is found by text: an encoded string holds
    no newline (json escapes it), and inside a dict the separator follows a scalar and precedes
    a key (``"``), so ``}``, newline, ``{`` marks the end of one dict and the start of the next.
    ``copies``: the dicts are a result's own, a non-finite float in them encoded as a string
    (:func:`_encoded`).
    """
    outer = "\n" + "  " * (depth + 1)
    inner = outer + "  "
    encode = _run_encoder(depth + 2, copies)
    text = _encoded(encode, items, copies)  # '[{"k": v,<inner>"k": v},<inner>{...}]'
    body = text[2:-2].replace("}," + inner + "{", outer + "}," + outer + "{" + inner)
    return outer + "{" + inner + body + outer + "}"


def parse_json_text(text: str, source: str) -> Any:
    """``json.loads`` with a one-line error naming the file and line.

    Raises:
        XavinitError: malformed JSON, or nesting too deep to read.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise XavinitError(
            f"{source}: malformed JSON at line {error.lineno}: {error.msg}"
        ) from None
    except RecursionError:
        raise XavinitError(f"{source}: malformed JSON: nested too deeply") from None
    except ValueError as error:  # Python's limit on the digits of an integer
        raise XavinitError(f"{source}: malformed JSON: {_first_line(error)}") from None


def _first_line(error: BaseException) -> str:
    """An exception's first line, shortened: a number of 5,000 digits is not a message."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text.split("; use sys.set_int_max_str_digits")[0][:200]


MAX_YAML_ALIASES = 100
"""At most this many alias references (``*name``) in a YAML file: a few are convenient, but
nested aliases multiply (the "billion laughs": 347 bytes that expand to gigabytes)."""


def _bounded_loader() -> Any:
    """A ``yaml.SafeLoader`` that refuses more than :data:`MAX_YAML_ALIASES` aliases."""
    import yaml

    class BoundedSafeLoader(yaml.SafeLoader):
        aliases = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                self.aliases += 1
                if self.aliases > MAX_YAML_ALIASES:
                    mark = self.peek_event().start_mark
                    raise yaml.YAMLError(
                        f"more than {MAX_YAML_ALIASES} aliases (at line {mark.line + 1}); "
                        "nested aliases can expand without bound"
                    )
            return super().compose_node(parent, index)

    return BoundedSafeLoader


def parse_yaml_text(text: str, source: str) -> Any:
    """Safe YAML with a bound on aliases, and a one-line error naming the file, line and problem.

    Only plain data is constructed (``yaml.SafeLoader``); nothing in the file runs.
    """
    import yaml

    try:
        return yaml.load(text, Loader=_bounded_loader())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error) or "malformed YAML"
        raise XavinitError(f"{source}: malformed YAML{at}: {problem}") from None
    except RecursionError:
        raise XavinitError(f"{source}: malformed YAML: nested too deeply") from None
    except ValueError as error:  # an integer beyond Python's digit limit
        raise XavinitError(f"{source}: malformed YAML: {_first_line(error)}") from None


def to_yaml(document: Any) -> str:
    """A document as block-style YAML, keys in their given order: ``yaml.dump`` with libyaml's
    emitter (``sort_keys=False, allow_unicode=True, default_flow_style=False``), character for
    character.

    A document of dicts, lists, strings, numbers, booleans and None is written by
    :class:`_YamlWriter` (PyYAML builds a Python node per value and resolves each twice: 20,000
    check rows took 53 s); anything else (another type, a container that occurs twice, a
    string libyaml would double-quote) goes to ``yaml.dump`` itself.
    """
    import yaml

    if type(document) in (dict, list) and document:
        try:
            return _YamlWriter().document(document)
        except _NotPlainError:
            pass
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: about 10x faster
    return yaml.dump(
        document, Dumper=dumper, sort_keys=False, allow_unicode=True, default_flow_style=False
    )


class _NotPlainError(Exception):
    """Raised inside :class:`_YamlWriter` for what only ``yaml.dump`` writes."""


_YAML_WIDTH = 80
"""libyaml's line width: a plain or single-quoted scalar breaks at a space past it."""

_YAML_SAFE = re.compile(r"[A-Za-z](?:[A-Za-z0-9 _.,;()'/=+\-:]*[A-Za-z0-9_.)'/+\-])?")
"""With no ``: `` in them (checked separately, as is a word YAML 1.1 reads as a boolean or
null), strings libyaml writes plain: no indicator first, no `` #``, no ``:`` or space at either
end; scheme specs such as ``normal:std=0.36`` and the reasons that name them included. (One
character class, no lookahead a character: 3.6x faster on check's reasons.)"""

_YAML_WORDS = frozenset(
    ["y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"]
)  # lower-cased: a superset of YAML 1.1's booleans and nulls, which libyaml would quote


class _YamlWriter:
    """libyaml's block layout for plain data (see :func:`to_yaml`): mappings' keys at their
    indent, a list inside a mapping at the key's indent, a mapping or list inside a list after
    ``- ``, scalars folded at a space past column 80 onto the value's indent."""

    def __init__(self, copies: bool = False) -> None:
        """``copies``: write a result's own objects as :func:`plain` copies them (a dataclass
        as a mapping, a tuple as a list, a non-finite float as its string, an object met twice
        as two copies) without making the copies."""
        self.copies = copies
        self.out: list[str] = []
        self.styles: dict[str, bool] = {}  # string -> written plain (True) or single-quoted
        self.seen: set[int] = set()
        self.keys: dict[str, str] = {}  # str key -> its text and ":"
        self.prefixes: dict[int, dict[str, str]] = {}  # indent -> str key -> indent, text, ":"
        self.strings: dict[tuple[int, int], dict[str, str]] = {}  # (indent, column) -> text

    def document(self, value: Any) -> str:
        self.node(value, 0, inline=False)
        return "".join(self.out)

    def node(self, value: Any, indent: int, inline: bool) -> None:
        """A non-empty dict or list at ``indent``; ``inline``: its first line follows ``- ``.

        A mapping's common leaves (finite floats, ints, booleans, None, short strings already
        known plain) are written here, one line each from its key's cached prefix (indent, key
        and ``:``); everything else goes through :meth:`value`."""
        if not self.copies:
            if id(value) in self.seen:
                raise _NotPlainError  # yaml.dump writes an anchor and an alias
            self.seen.add(id(value))
        out = self.out
        if type(value) is not dict:
            if len(value) > 1 and self.rows(value, indent, inline):
                return
            pad = " " * indent
            for index, item in enumerate(value):
                out.append("-" if inline and index == 0 else pad + "-")
                self.value(item, indent, indent + 1, child_indent=indent + 2, in_list=True)
            return
        prefixes = self.prefixes.get(indent)
        if prefixes is None:
            prefixes = self.prefixes[indent] = {}
        styles = self.styles
        append = out.append
        first = inline
        for key, item in value.items():
            if first:  # after "- ": no indent before the key
                first = False
                head = self.key(key)
                out.append(head)
                self.value(item, indent, indent + len(head), child_indent=indent + 2)
                continue
            line = prefixes.get(key) if type(key) is str else None
            if line is None:
                head = self.key(key)
                line = " " * indent + head
                if type(key) is str:
                    prefixes[key] = line
            kind = type(item)
            if kind is float:
                if item - item == 0:  # finite
                    text = repr(item)
                    if "e" in text and "." not in text:
                        text = text.replace("e", ".0e", 1)
                    append(f"{line} {text}\n")
                    continue
            elif kind is str:
                if len(line) + len(item) < _YAML_WIDTH and styles.get(item):
                    append(f"{line} {item}\n")  # a short string written plain
                    continue
            elif kind is int:
                append(f"{line} {item}\n")
                continue
            elif kind is bool:
                append(f"{line} true\n" if item else f"{line} false\n")
                continue
            elif item is None:
                append(f"{line} null\n")
                continue
            append(line)
            self.value(item, indent, len(line), child_indent=indent + 2)

    def rows(self, rows: list[Any], indent: int, inline: bool) -> bool:
        """A list of mappings with one key order (check's tensors, their candidates) written a
        column at a time (:meth:`row_texts`); False, writing nothing, for any other list."""
        first: Any = type(rows[0])
        if self.copies and is_dataclass_type(first):
            if len(set(map(type, rows))) > 1:
                return False
            rows = list(map(vars, rows))  # a result's rows (check's tensors) as mappings
        keys = _row_keys(rows)
        if keys is None:
            return False
        texts = self.row_texts(rows, keys, indent + 2)
        if inline:  # after "- ": the first row's dash without its indent
            texts[0] = texts[0][indent:]
        self.out.append("".join(texts))
        return True

    def row_texts(
        self, rows: list[dict[str, Any]], keys: tuple[str, ...], indent: int
    ) -> list[str]:
        """Each row's lines as :meth:`node` writes a mapping in a list (its dash at
        ``indent - 2``, its keys at ``indent``), built a column at a time: a column of numbers,
        booleans and nulls is formatted by json's C encoder in one call (``float.__repr__``
        and YAML's ``true``/``false``/``null``, exponents given their ``.0``), a column of
        strings through one :meth:`scalar` per distinct string, and what else a column holds
        value by value, so the text is the same as a row at a time."""
        self.claim(rows)
        pad = " " * indent
        columns: list[Any] = []
        values = list(chain.from_iterable(map(dict.values, rows)))  # row after row: a column
        width = len(keys)  # is a slice (every row has ``keys``, in order: _row_keys)
        for position, key in enumerate(keys):
            head = self.key(key)
            prefix = (pad[2:] + "- " if position == 0 else pad) + head
            texts = self.column(values[position::width], indent, indent + len(head))
            columns += (repeat(prefix), texts)
        return list(map("".join, zip(*columns, strict=False)))  # the prefixes repeat

    def column(
        self, values: list[Any], indent: int, column: int, in_list: bool = False
    ) -> list[str]:
        """What follows each value's key (or ``-``) ending at ``column`` of a mapping at
        ``indent``, as :meth:`value` writes it: ``" 0.5\n"``, a nested block after ``"\n"``."""
        kinds = set(map(type, values))
        if kinds <= _JSON_LEAVES:
            texts = _leaf_texts(values, kinds)
            if texts is not None:
                return texts
        elif kinds == _STR:
            cache = self.strings.get((indent, column))
            if cache is None:
                cache = self.strings[(indent, column)] = {}
            for item in set(values).difference(cache):
                cache[item] = " " + self.scalar(item, column + 1, indent + 2) + "\n"
            return list(map(cache.__getitem__, values))
        elif kinds == _LIST and not in_list:
            nested = self.lists(values, indent)
            if nested is not None:
                return nested
        return [self.captured(item, indent, column, in_list) for item in values]

    def lists(self, values: list[list[Any]], indent: int) -> list[str] | None:
        """The texts of a column of lists in a mapping at ``indent`` (each written at the key's
        indent), when all their items together are mappings of one key order or scalars:
        formatted as one column; None otherwise."""
        items = list(chain.from_iterable(values))
        if not items:
            return None
        keys = _row_keys(items)
        if keys is not None:
            lines = self.row_texts(items, keys, indent + 2)
        elif set(map(type, items)) <= _SCALARS:
            lines = self.column(items, indent, indent + 1, in_list=True)
            lines = list(map((" " * indent + "-").__add__, lines))
        else:
            return None
        self.claim(values)
        ends = list(accumulate(map(len, values)))
        return [
            "\n" + "".join(lines[end - len(value) : end]) if value else " []\n"
            for value, end in zip(values, ends, strict=True)
        ]

    def claim(self, containers: list[Any]) -> None:
        """Mark ``containers`` as written; one written before (or twice here) is a shared
        object, which ``yaml.dump`` writes as an anchor and its aliases (with ``copies``, as
        two copies)."""
        if self.copies:
            return
        ids = set(map(id, containers))
        if len(ids) < len(containers) or not ids.isdisjoint(self.seen):
            raise _NotPlainError
        self.seen |= ids

    def captured(self, item: Any, indent: int, column: int, in_list: bool) -> str:
        """The text :meth:`value` writes for ``item``."""
        saved, self.out = self.out, []
        try:
            self.value(item, indent, column, child_indent=indent + 2, in_list=in_list)
            return "".join(self.out)
        finally:
            self.out = saved

    def value(
        self, item: Any, indent: int, column: int, child_indent: int, in_list: bool = False
    ) -> None:
        """What follows a key's ``:`` or a ``-`` ending at ``column``."""
        kind = type(item)
        if self.copies and (kind not in _PLAIN_KINDS or (kind is float and item - item != 0)):
            item = _plain_view(item)
            kind = type(item)
        out = self.out
        if kind is float and item - item == 0:  # finite: the commonest leaf, written here
            text = repr(item)
            if "e" in text and "." not in text:
                text = text.replace("e", ".0e", 1)
            out.append(" " + text + "\n")
            return
        if kind is str and column + len(item) < _YAML_WIDTH and self.styles.get(item):
            out.append(" " + item + "\n")  # a short string written plain
            return
        if (kind is dict or kind is list) and item:
            if kind is list and not in_list:  # a list in a mapping: at the key's indent
                out.append("\n")
                self.node(item, indent, inline=False)
            elif in_list:  # after "- " on the same line
                out.append(" ")
                self.node(item, child_indent, inline=True)
            else:
                out.append("\n")
                self.node(item, child_indent, inline=False)
            return
        if kind is dict or kind is list:
            if not self.copies:
                if id(item) in self.seen:
                    raise _NotPlainError
                self.seen.add(id(item))
            out.append(" {}\n" if kind is dict else " []\n")
            return
        out.append(" " + self.scalar(item, column + 1, child_indent) + "\n")

    def key(self, key: Any) -> str:
        """A mapping key and its ``:`` (a simple key: never folded, at most 128 characters)."""
        if type(key) is str:
            text = self.keys.get(key)
            if text is None:
                text = self.keys[key] = self.key_text(key)
            return text
        return self.key_text(key)

    def key_text(self, key: Any) -> str:
        text = self.scalar(key, None, 0)
        if len(text) > 128:
            raise _NotPlainError
        return text + ":"

    def scalar(self, value: Any, column: int | None, indent: int) -> str:
        """A scalar as libyaml writes it from ``column`` (None: a key, never folded)."""
        kind = type(value)
        if kind is str:
            plain = self.styles.get(value)
            if plain is None:
                plain = self.styles[value] = _yaml_style(value)
            text = value if plain else "'" + value.replace("'", "''") + "'"
            if column is None or column + len(text) <= _YAML_WIDTH + 1:
                return text
            return _yaml_fold(text, column, indent, quoted=not plain)
        if kind is float:
            if value != value:
                return ".nan"
            if value in (math.inf, -math.inf):
                return ".inf" if value > 0 else "-.inf"
            text = repr(value).lower()
            return text.replace("e", ".0e", 1) if "." not in text and "e" in text else text
        if kind is bool:
            return "true" if value else "false"
        if kind is int:
            return str(value)
        if value is None:
            return "null"
        raise _NotPlainError


_JSON_LEAVES = frozenset({float, int, bool, type(None)})
"""Leaves json's encoder writes as YAML does (finite floats; an exponent without a point aside)."""
_STR = frozenset({str})
_FLOAT = frozenset({float})
_LIST = frozenset({list})
_encode_leaves = json.JSONEncoder(allow_nan=False, separators=("\n ", ": ")).encode
_BARE_EXPONENT = re.compile(r"\n (-?\d+)e")
"""``1e-05`` in a column of numbers, which YAML writes ``1.0e-05`` (a float, not a string)."""
_NUMBERS = frozenset({float, int, bool})
_SAMPLE = 1024


def _leaf_texts(values: list[Any], kinds: set[type]) -> list[str] | None:
    """``" text\n"`` of each number, boolean or None of ``values`` (of types ``kinds``) as
    :meth:`_YamlWriter.value` writes it; a column of few distinct values (check's expected
    variances) formats each once (``float.__repr__``, 0.4 us, is most of the cost). None when
    a value is a non-finite float or an integer past Python's digit limit. Whether a column
    repeats is judged first on its first :data:`_SAMPLE` values (a set of all of a column of
    distinct p-values cost an eighth of its formatting)."""
    distinct = values
    if 4 * len(set(values[:_SAMPLE])) <= min(len(values), _SAMPLE):
        distinct = list(set(values))
    if (
        distinct is values
        or 4 * len(distinct) > len(values)  # looking them up would cost more than it saves
        or len(kinds & _NUMBERS) > 1  # True == 1 == 1.0 would share a text
        or (float in kinds and 0.0 in distinct)  # and 0.0 == -0.0
    ):
        distinct = values
    try:
        text = _encode_leaves(distinct)  # "[a\n b\n c]"
    except ValueError:
        return None
    text = "\n " + text[1:-1] + "\n"
    if "e" in text and not (kinds == _FLOAT and text.count(".") == len(distinct)):
        text = _BARE_EXPONENT.sub(r"\n \1.0e", text)  # not needed where every float's
        # text has its point (a float's repr has a point or an exponent, and at most one point)
    texts = text[1:].splitlines(keepends=True)
    if distinct is values:
        return texts
    return list(map(dict(zip(distinct, texts, strict=True)).__getitem__, values))


_PLAIN_KINDS = _SCALARS | {dict, list}
"""What :func:`plain` keeps as it is (a float when finite)."""


def _plain_view(item: Any) -> Any:
    """``item`` as :func:`plain` would copy it, one level: a dataclass's fields (its own dict,
    not a copy), a tuple as a list, a non-finite float as its string."""
    kind: Any = type(item)
    if kind is float:
        return item if item - item == 0 else encode_nonfinite(item)
    if kind is tuple:
        return list(item)
    if is_dataclass_type(kind):
        return vars(item)
    return encode_nonfinite(item)


def yaml_of_fields(document: dict[str, Any]) -> str | None:
    """A result's document written from the result's own objects (``document``: its fields in
    :meth:`to_dict`'s order, the values not copied), the text ``to_yaml(plain(document))``
    gives; None where only ``yaml.dump`` writes it. Copying a check of 5,000 tensors cost a
    quarter of its YAML."""
    try:
        return _YamlWriter(copies=True).document(document)
    except _NotPlainError:
        return None


def _row_keys(rows: list[Any]) -> tuple[str, ...] | None:
    """The one key order of ``rows`` when all are non-empty dicts with string keys and the same
    keys in the same order; None otherwise."""
    if set(map(type, rows)) != {dict}:
        return None
    keys = tuple(rows[0])
    if not keys or not all(type(key) is str for key in keys):
        return None
    if list(chain.from_iterable(rows)) != list(keys) * len(rows):  # no tuple a row
        return None
    return keys


def _yaml_style(text: str) -> bool:
    """Whether libyaml writes ``text`` plain (True) or single-quoted (False); _NotPlainError for
    anything else. Most strings pass :data:`_YAML_SAFE`; the rest ask libyaml itself."""
    if _YAML_SAFE.fullmatch(text) and ": " not in text and text.lower() not in _YAML_WORDS:
        return True
    import yaml

    written = yaml.dump(
        text, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), allow_unicode=True, width=-1
    )
    if written in (text + "\n", text + "\n...\n"):  # plain, with or without a document end
        return True
    if written == "'" + text.replace("'", "''") + "'\n" and text.isprintable():
        return False
    raise _NotPlainError


def _yaml_fold(text: str, column: int, indent: int, quoted: bool) -> str:
    """``text`` (a plain scalar, or a single-quoted one with its quotes) written from
    ``column``, broken as libyaml breaks it: at a space that follows a non-space and precedes a
    non-space, when the column before the space is past 80, onto ``indent``."""
    lines = []
    start, at = 0, column  # the line's first character and the column it is written at
    end = len(text) - 1 if quoted else len(text)  # a quoted scalar: not at its last quote
    position = text.find(" ", max(_YAML_WIDTH + 1 - at, 0))  # the first space past column 80
    while position >= 0:
        if (
            position > (1 if quoted else 0)
            and text[position - 1] != " "
            and position + 1 < end
            and text[position + 1] != " "
        ):
            lines.append(text[start:position])
            start, at = position + 1, indent
            position = text.find(" ", start + max(_YAML_WIDTH + 1 - at, 0))
        else:
            position = text.find(" ", position + 1)
    lines.append(text[start:])
    return ("\n" + " " * indent).join(lines)


def require_regular_file(path: str | os.PathLike[str], what: str) -> None:
    """Refuse a path that exists but is not a regular file (a FIFO would block the read for
    ever, a device never ends); a missing path is left to the reader's own message.

    Raises:
        XavinitError: a folder, FIFO, socket or device.
    """
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if stat.S_ISDIR(mode):
        raise XavinitError(f"{what} {printable(str(path))!r} is a folder")
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
        raise XavinitError(f"{what} {printable(str(path))!r} is {kind}; give a regular file")


def read_text(path: str, what: str) -> str:
    """The UTF-8 text of a file, with one-line errors naming ``what`` it should have been.

    Raises:
        XavinitError: a missing, unreadable or non-UTF-8 file.
    """
    from pathlib import Path

    require_regular_file(path, what)
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise XavinitError(f"{what} {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise XavinitError(f"{what} {str(path)!r} is a folder") from None
    except (OSError, UnicodeDecodeError) as error:
        raise XavinitError(f"cannot read {what} {str(path)!r}: {error}") from None


_ATOMS = (int, str, bool, type(None))


def plain(value: Any) -> Any:
    """Dataclasses, dicts, lists and tuples as plain dicts and lists, non-finite floats as their
    strings: one pass, no deep copies (``dataclasses.asdict`` copies every leaf and is ten times
    slower on a 200,000-row result); the common leaves (numbers, strings) are kept in place."""
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else encode_nonfinite(value)
    if kind in _ATOMS:
        return value
    if kind is list or kind is tuple:
        return [plain(item) for item in value]
    if kind is dict or dataclasses.is_dataclass(value):
        items = value if kind is dict else value.__dict__
        out = {}
        for key, item in items.items():
            leaf = type(item)
            if leaf in _ATOMS or (leaf is float and math.isfinite(item)):
                out[key] = item
            else:
                out[key] = plain(item)
        return out
    return encode_nonfinite(value)
