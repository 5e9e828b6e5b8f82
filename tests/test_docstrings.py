"""Public functions say what they return, in which units and shapes, and what they raise (issue 18):
every public module-level function, and every public method of more than three lines, has a
docstring. Short methods (properties, `close`) and protocol methods documented on the protocol
they implement in three lines or fewer are exempt."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("runtime", "converter", "cli", "data")


def undocumented(source: str) -> list[str]:
    """Names (Class.method for methods) of the public functions in `source` that the rule requires
    to have a docstring and that have none."""
    missing: list[str] = []

    def visit(body: list[ast.stmt], owner: str | None) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                visit(node.body, node.name)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
                length = node.end_lineno - node.body[0].lineno + 1
                if ast.get_docstring(node) is None and (owner is None or length > 3):
                    missing.append(f"{owner}.{node.name}" if owner else node.name)

    visit(ast.parse(source).body, None)
    return missing


def test_the_rule_sees_a_missing_docstring() -> None:
    code = "def f():\n    return 1\n\nclass A:\n    def short(self):\n        return 1\n\n" \
           "    def long(self):\n        a = 1\n        b = 2\n        c = 3\n        return a + b + c\n"
    assert undocumented(code) == ["f", "A.long"]
    assert undocumented('def f():\n    """Documented."""\n    return 1\n') == []


def test_public_functions_have_docstrings() -> None:
    missing = [f"{path.relative_to(ROOT)}: {name}" for folder in FOLDERS for path in sorted((ROOT / folder).rglob("*.py"))
               for name in undocumented(path.read_text(encoding="utf-8"))]
    assert not missing, "public functions without a docstring:\n" + "\n".join(missing)
