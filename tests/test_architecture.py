"""Import layering of the package, read from the source (nothing is imported).

Every module under ``xavinit/`` is parsed and each import statement classified: module level
(run when the module is imported: the module body, class bodies, module-level ``if``/``try``)
or function level, and whether it sits in an ``if TYPE_CHECKING:`` block. The rules:

- the module-level imports between xavinit modules form no cycle (``TYPE_CHECKING`` imports
  left out, since they never run);
- the core modules import no CLI, rendering, YAML or plotting library and no xavinit module
  outside the leaves and the core (any import: function level and ``TYPE_CHECKING`` included);
- no layer imports one above it (:data:`LAYERS`; any import), and the renderers import neither
  the core, the datasets nor the experiments: what they show is a field of the result.

An import names the module it loads: ``import xavinit.x`` and ``from xavinit.x import y`` name
``xavinit.x``, ``from xavinit import x`` names ``xavinit.x`` when ``x`` is a module and the
package ``xavinit`` (its ``__init__``) otherwise.
"""

from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "xavinit"


def _modules(*names: str) -> frozenset[str]:
    return frozenset(f"xavinit.{name}" for name in names)


CORE = frozenset(
    name
    for name in (f"xavinit.core.{path.stem}" for path in (PACKAGE / "core").glob("*.py"))
    if not name.endswith("__init__")
) | _modules("core", "specs", "text", "fileio", "errors", "_version", "limits", "extras")
"""The numeric core and its leaves: numpy, array-api-compat (whose namespaces torch and cupy
arrays bring, imported only when asked for) and the standard library."""

LEAVES_AND_CORE = CORE | _modules("resources", "paper", "results", "serialize", "commands")
"""What a core module may import from xavinit."""

FORBIDDEN_IN_CORE = frozenset({"typer", "rich", "yaml", "matplotlib", "pydantic"})
"""Libraries for ``cli/``, ``render/`` and ``config/`` only."""


@dataclass(frozen=True)
class Import:
    """``source`` imports the module ``target`` at ``path:line``."""

    source: str
    target: str
    path: str
    line: int
    module_level: bool
    type_checking: bool

    def __str__(self) -> str:
        where = "" if self.module_level else ", inside a function"
        guard = ", under TYPE_CHECKING" if self.type_checking else ""
        return f"{self.path}:{self.line}: {self.source} imports {self.target}{where}{guard}"


# ---------------------------------------------------------------------------------------------
# Reading the imports


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules(package: Path = PACKAGE, root: Path = ROOT) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    return {module_name(path, root): path for path in sorted(package.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _loaded_module(name: str, known: set[str]) -> str:
    """The xavinit module that importing ``name`` names: its longest known prefix."""
    if name != "xavinit" and not name.startswith("xavinit."):
        return name
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in known:
            return ".".join(parts[:end])
    return name


def _statement_lists(node: ast.stmt) -> list[list[ast.stmt]]:
    """The statement blocks inside ``node``: bodies, else/finally, handlers, match cases."""
    blocks: list[list[ast.stmt]] = []
    for _, value in ast.iter_fields(node):
        if not isinstance(value, list):
            continue
        if value and isinstance(value[0], ast.stmt):
            blocks.append(value)
        blocks += [item.body for item in value if isinstance(item, ast.excepthandler)]
        blocks += [item.body for item in value if isinstance(item, ast.match_case)]
    return blocks


def imports_of(
    source: str, module: str, is_package: bool, path: str, known: set[str]
) -> list[Import]:
    """Every module imported by ``source``, the code of ``module``, in order, each once a line.

    Args:
        source: the module's text.
        module: its dotted name; relative imports are resolved against its package.
        is_package: True for an ``__init__.py``.
        path: the file name to report.
        known: the dotted names of every module of the package.
    """
    package = module if is_package else module.rpartition(".")[0]
    found: dict[Import, None] = {}  # ordered and unique: ``from m import a, b`` names m once

    def add(target: str, node: ast.stmt, module_level: bool, type_checking: bool) -> None:
        target = _loaded_module(target, known)
        found[Import(module, target, path, node.lineno, module_level, type_checking)] = None

    def visit(nodes: list[ast.stmt], module_level: bool, type_checking: bool) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    add(alias.name, node, module_level, type_checking)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    target = submodule if submodule in known else base
                    add(target, node, module_level, type_checking)
            elif isinstance(node, ast.If) and _is_type_checking(node.test):
                visit(node.body, module_level, True)
                visit(node.orelse, module_level, type_checking)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(node.body, False, type_checking)
            else:  # class bodies and if/try/with/for blocks run with their parent
                for block in _statement_lists(node):
                    visit(block, module_level, type_checking)

    visit(ast.parse(source, filename=path).body, True, False)
    return list(found)


def all_imports() -> list[Import]:
    modules = package_modules()
    known = set(modules)
    found: list[Import] = []
    for name, path in modules.items():
        text = path.read_text(encoding="utf-8")
        relative = str(path.relative_to(ROOT))
        found += imports_of(text, name, path.name == "__init__.py", relative, known)
    return found


# ---------------------------------------------------------------------------------------------
# Cycles


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components that hold a cycle (Tarjan), each sorted, largest first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in edges.get(node, ()):
                components.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return sorted(components, key=lambda c: (-len(c), c))


def shortest_cycles(edges: dict[str, set[str]], members: set[str]) -> list[list[str]]:
    """The shortest cycle through each of ``members`` (a component), without repeats.

    Each cycle is written from its smallest module back to it, ``[a, b, a]``; shortest first.
    """
    cycles: set[tuple[str, ...]] = set()
    for start in sorted(members):
        came_from: dict[str, str] = {}
        queue = deque([start])
        while queue and start not in came_from:  # breadth first, back to start
            node = queue.popleft()
            for nxt in sorted(edges.get(node, set()) & members):
                if nxt not in came_from:
                    came_from[nxt] = node
                    queue.append(nxt)
        if start not in came_from:  # pragma: no cover - members form a component
            continue
        path = [came_from[start]]
        while path[-1] != start:
            path.append(came_from[path[-1]])
        path.reverse()  # start -> ... -> the module that imports start
        turn = path.index(min(path))
        cycles.add(tuple(path[turn:] + path[:turn]))
    return [[*c, c[0]] for c in sorted(cycles, key=lambda c: (len(c), c))]


# ---------------------------------------------------------------------------------------------
# The analysis itself


def test_the_walker_sees_every_kind_of_import():
    source = (
        "from __future__ import annotations\n"
        "import numpy as np\n"
        "from typing import TYPE_CHECKING\n"
        "from xavinit import errors, __version__\n"
        "from ..core import stats\n"
        "from ..core.schemes import get_scheme, Scheme\n"
        "from . import Progress\n"
        "import xavinit.render.table\n"
        "if TYPE_CHECKING:\n"
        "    from xavinit.config import InitConfig\n"
        "try:\n"
        "    import yaml\n"
        "except ImportError:\n"
        "    import json\n"
        "class A:\n"
        "    import rich\n"
        "    def method(self):\n"
        "        from ..results import load_result\n"
        "def f():\n"
        "    if True:\n"
        "        import typer\n"
    )
    known = {
        "xavinit",
        "xavinit.config",
        "xavinit.errors",
        "xavinit.experiments",
        "xavinit.experiments.init",
        "xavinit.render",
        "xavinit.render.table",
        "xavinit.results",
        "xavinit.core.schemes",
        "xavinit.core.stats",
    }
    found = imports_of(source, "xavinit.experiments.init", False, "x.py", known)
    assert [(i.target, i.module_level, i.type_checking) for i in found] == [
        ("__future__", True, False),
        ("numpy", True, False),
        ("typing", True, False),
        ("xavinit.errors", True, False),
        ("xavinit", True, False),  # __version__ is a name, not a module
        ("xavinit.core.stats", True, False),
        ("xavinit.core.schemes", True, False),  # once for both names
        ("xavinit.experiments", True, False),
        ("xavinit.render.table", True, False),
        ("xavinit.config", True, True),
        ("yaml", True, False),
        ("json", True, False),
        ("rich", True, False),
        ("xavinit.results", False, False),
        ("typer", False, False),
    ]


def test_cycles_are_found_and_spelled_out():
    edges = {"a": {"b"}, "b": {"a", "c"}, "c": {"a"}, "d": {"a", "d"}, "e": {"a"}}
    assert find_cycles(edges) == [["a", "b", "c"], ["d"]]
    assert shortest_cycles(edges, {"a", "b", "c"}) == [["a", "b", "a"], ["a", "b", "c", "a"]]
    assert shortest_cycles(edges, {"d"}) == [["d", "d"]]


def test_every_core_module_exists():
    modules = set(package_modules())
    assert modules >= LEAVES_AND_CORE, sorted(LEAVES_AND_CORE - modules)


# ---------------------------------------------------------------------------------------------
# The rules


def test_module_level_imports_have_no_cycle():
    runtime = [
        i
        for i in all_imports()
        if i.module_level and not i.type_checking and i.target.partition(".")[0] == "xavinit"
    ]
    edges: dict[str, set[str]] = {}
    for i in runtime:
        if i.target != i.source:
            edges.setdefault(i.source, set()).add(i.target)
    lines = []
    for members in find_cycles(edges):
        inside = set(members)
        lines.append(f"{len(members)} modules import each other: {', '.join(members)}")
        lines += ["  cycle: " + " -> ".join(c) for c in shortest_cycles(edges, inside)]
        lines += [f"  {i}" for i in runtime if i.source in inside and i.target in inside]
    assert not lines, "module-level import cycles:\n" + "\n".join(lines)


def test_core_modules_import_only_the_core_and_no_front_end_library():
    offending = []
    for i in all_imports():
        if i.source not in CORE:
            continue
        top = i.target.partition(".")[0]
        if top in FORBIDDEN_IN_CORE:
            offending.append(f"{i}: {top} belongs to cli/, render/ or config/")
        elif top == "xavinit" and i.target not in LEAVES_AND_CORE:
            offending.append(f"{i}: not a leaf or core module")
    assert not offending, "core modules reach outside the core:\n" + "\n".join(offending)


LAYERS = (
    ("xavinit.experiments", ("xavinit.render", "xavinit.cli")),
    ("xavinit.datasets", ("xavinit.render", "xavinit.cli", "xavinit.experiments")),
    ("xavinit.formats", ("xavinit.render", "xavinit.cli", "xavinit.experiments")),
    ("xavinit.config", ("xavinit.render", "xavinit.cli", "xavinit.experiments")),
    ("xavinit.render", ("xavinit.cli", "xavinit.core", "xavinit.datasets", "xavinit.experiments")),
)
"""Data flows one way: an experiment never renders, nothing below the CLI imports it, and a
renderer shows the fields of its result: it computes nothing (no core), loads nothing (no
datasets) and runs nothing (no experiments)."""


def test_upper_layers_are_never_imported_from_below():
    offending = [
        f"{i.path}:{i.line}: {i.source} imports {i.target}"
        for i in all_imports()
        for below, above in LAYERS
        if (i.source == below or i.source.startswith(below + "."))
        and any(i.target == a or i.target.startswith(a + ".") for a in above)
    ]
    assert not offending, "\n".join(offending)
