"""The fake Realtime server's modules import in one direction and none grows past 450 lines.

The graph counts every import of a sibling module, those under ``if TYPE_CHECKING:`` and inside
functions too: a type-only import back up the package is still a circle a reader has to hold.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import appliance.testing.fake_realtime as fake_realtime

PACKAGE = Path(fake_realtime.__file__).parent
MAX_LINES = 450


def sibling_imports(path: Path) -> set[str]:
    """The package modules ``path`` imports (``from .x import ...``, ``from . import x``, absolute)."""
    prefix = fake_realtime.__name__ + "."
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 1:
                found.update(alias.name for alias in node.names)
            elif node.level == 0 and node.module and node.module.startswith(prefix):
                found.add(node.module.removeprefix(prefix).split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(
                alias.name.removeprefix(prefix).split(".")[0] for alias in node.names if alias.name.startswith(prefix)
            )
    return found - {path.stem}


def import_graph() -> dict[str, set[str]]:
    modules = {p.stem: p for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    return {name: sibling_imports(path) & modules.keys() for name, path in modules.items()}


def test_the_graph_sees_type_checking_imports(tmp_path: Path) -> None:
    source = tmp_path / "a.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\nfrom . import c\n")
    assert sibling_imports(source) == {"b", "c"}


def test_imports_run_one_way() -> None:
    graph = import_graph()
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise AssertionError(f"import circle in appliance/testing/fake_realtime: {' -> '.join(exc.args[1])}") from None
    assert set(order) == set(graph)
    assert graph["server"], "the server sits on top of the other modules"


def test_no_module_over_450_lines() -> None:
    sizes = {p.name: len(p.read_text().splitlines()) for p in PACKAGE.glob("*.py")}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}
