"""One owner for the optional extras: the table in xavinit/extras.py is pyproject's, and no
other module spells an install line (a renamed extra is then one edit, and a test catches a
message naming an extra that does not exist)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import tomllib

from xavinit.extras import EXTRAS, install

ROOT = Path(__file__).resolve().parent.parent


def test_the_extras_are_the_ones_pyproject_declares():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert set(EXTRAS) == set(declared) - {"test"}


def test_an_install_line_names_its_extra_and_an_unknown_extra_is_refused():
    assert install("torch") == "pip install 'xavinit[torch]'"
    assert install("cupy").startswith("pip install 'xavinit[cupy]' (")
    with pytest.raises(KeyError, match="unknown extra 'tensorflow'"):
        install("tensorflow")


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def test_no_other_module_spells_an_install_line():
    spelled = []
    for path in sorted((ROOT / "xavinit").rglob("*.py")):
        if path.name == "extras.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and "xavinit[" in node.value
                and id(node) not in docs
            ):
                spelled.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert spelled == []
