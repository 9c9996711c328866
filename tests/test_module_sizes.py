"""Rooms of a sensible size: no module under appliance/ grows past 450 lines (issue 22), and the
modules split out of settings.py and conversation/session.py import one way (no circle)."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

import appliance

ROOT = Path(appliance.__file__).parent
MAX_LINES = 450


def oversized(root: Path, limit: int = MAX_LINES) -> dict[str, int]:
    """Every .py file under `root` longer than `limit` lines, with its length."""
    sizes = {str(p.relative_to(root)): len(p.read_text(encoding="utf-8").splitlines()) for p in root.rglob("*.py")}
    return {name: lines for name, lines in sizes.items() if lines > limit}


def test_the_check_sees_a_long_module(tmp_path: Path) -> None:
    (tmp_path / "deep").mkdir()
    (tmp_path / "deep" / "long.py").write_text("x = 1\n" * (MAX_LINES + 1))
    (tmp_path / "short.py").write_text("x = 1\n" * MAX_LINES)
    assert oversized(tmp_path) == {"deep/long.py": MAX_LINES + 1}


def test_no_module_over_450_lines() -> None:
    assert len(list(ROOT.rglob("*.py"))) > 50, "the walk found the package's modules"
    too_long = oversized(ROOT)
    assert not too_long, f"split these along their seams (limit {MAX_LINES} lines): {too_long}"


def package_imports(package: Path, name: str) -> dict[str, set[str]]:
    """Which of the package's modules each of its modules imports (type-only and in-function too)."""
    modules = {p.stem for p in package.glob("*.py")} - {"__init__"}
    graph: dict[str, set[str]] = {}
    for module in modules:
        found: set[str] = set()
        for node in ast.walk(ast.parse((package / f"{module}.py").read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1:
                    found.update([node.module.split(".")[0]] if node.module else [a.name for a in node.names])
                elif node.level == 0 and node.module and node.module.startswith(f"{name}."):
                    found.add(node.module.removeprefix(f"{name}.").split(".")[0])
        graph[module] = (found & modules) - {module}
    return graph


def test_the_graph_sees_a_circle_through_an_in_function_import(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("from .b import x\n")
    (tmp_path / "b.py").write_text("def f():\n    from p.a import y\n")
    graph = package_imports(tmp_path, "p")
    assert graph == {"a": {"b"}, "b": {"a"}}
    with pytest.raises(CycleError):
        list(TopologicalSorter(graph).static_order())


@pytest.mark.parametrize("package", ["settings", "conversation"])
def test_the_split_packages_import_one_way(package: str) -> None:
    graph = package_imports(ROOT / package, f"appliance.{package}")
    try:
        list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise AssertionError(f"import circle in appliance/{package}: {' -> '.join(exc.args[1])}") from None
    if package == "settings":
        assert graph["root"] >= {"groups", "rules", "files"}
        assert graph["rules"] == set(), "the shared rules depend on nothing else in settings"
    else:
        assert graph["session"] >= {"echo_guard", "push_to_talk", "endings", "realtime_config", "server_events"}


def modules_importing(root: Path, package: str) -> set[str]:
    """Modules outside `root/package` that import from it (relative or absolute, in functions too)."""
    found = set()
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        if rel.parts[0] == package:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                # A relative import reaches the top package when its dots climb every folder of the path.
                reaches_top = node.level == len(rel.parts)
                target = f"appliance.{node.module}" if reaches_top else node.module
                if target == f"appliance.{package}" or target.startswith(f"appliance.{package}."):
                    found.add(str(rel))
    return found


def test_the_benchmarks_sit_above_what_they_measure() -> None:
    # `appliance bench` is run from the command line; nothing it measures imports it back.
    assert modules_importing(ROOT, "bench") == {"cli.py"}
