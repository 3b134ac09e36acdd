"""Imports inside ``xavinit/render``: one way, with no cycle even among function-level imports.

``tests/test_architecture.py`` forbids cycles of module-level imports across the package; inside
the renderers the rule is stricter: an import inside a function counts too (it runs on first
use, and a cycle through it means two modules that cannot be read apart: markdown, report and
table calling each other, the plots package and its modules). The imports are read from the
source with that file's walker (nothing is imported); ``TYPE_CHECKING`` imports never run and are
left out.
"""

from __future__ import annotations

from test_architecture import all_imports, find_cycles, shortest_cycles

RENDER = "xavinit.render"


def _render_edges() -> tuple[dict[str, set[str]], list[str]]:
    """Imports between render modules (function level included): edges, and the lines."""
    edges: dict[str, set[str]] = {}
    lines = []
    for i in all_imports():
        inside = (i.source + ".").startswith(RENDER + ".") and (i.target + ".").startswith(
            RENDER + "."
        )
        if inside and not i.type_checking and i.target != i.source:
            edges.setdefault(i.source, set()).add(i.target)
            lines.append(str(i))
    return edges, lines


def test_the_render_imports_are_read_function_level_ones_included():
    edges, _ = _render_edges()
    # Known imports, so that the next test cannot pass on an empty graph.
    assert "xavinit.render.markdown" in edges["xavinit.render.report"]
    assert "xavinit.render.plots.draw" in edges["xavinit.render.plots.files"]
    assert "xavinit.render.plots" in edges["xavinit.render.html"]  # inside a function


def test_render_modules_import_each_other_one_way():
    edges, lines = _render_edges()
    problems = []
    for members in find_cycles(edges):
        inside = set(members)
        problems.append(f"{len(members)} render modules import each other: {', '.join(members)}")
        problems += ["  cycle: " + " -> ".join(c) for c in shortest_cycles(edges, inside)]
    assert not problems, "\n".join([*problems, "imports:", *lines])
