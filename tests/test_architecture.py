"""The package's wings import only downward, and no modules import each other in a circle."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "ptypinn"

# A wing may import its own modules and those of lower levels only.
LEVELS = {
    "physics": 0,
    "io": 1,
    "analysis": 2,
    "pinn": 2,
    "engines": 3,
    "study": 4,
    "cli_base": 5,
    "api": 5,
    "cli_tools": 6,
    "cli": 7,
    "__main__": 8,
}
CLI_LINES = 450  # the command line stays thin: parse, call, print a record's summary
PLOTTING = "ptypinn.analysis.report"
MAY_PLOT = {"study", "cli", "cli_tools"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every ptypinn module a file imports, at any depth (lazy imports inside functions count)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ptypinn"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("ptypinn"))
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    return {name for name in found if name in modules and name != "ptypinn"}


GRAPH = {
    module_name(path): imports(path) for path in PACKAGE.rglob("*.py") if path.name != "__init__.py"
}


def wing(module: str) -> str:
    return module.split(".")[1]


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_go_only_downward(module):
    level = LEVELS[wing(module)]
    upward = sorted(
        other
        for other in GRAPH[module]
        if LEVELS[wing(other)] > level
        or (LEVELS[wing(other)] == level and wing(other) != wing(module))
    )
    assert upward == [], f"{module} imports from its own level or above: {upward}"
    if wing(module) not in MAY_PLOT:
        assert PLOTTING not in GRAPH[module], f"{module} imports plotting ({PLOTTING})"


def test_no_import_cycles():
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for other in sorted(GRAPH.get(module, ())):
            if state.get(other) == "open":
                cycle = [*path[path.index(other) :], other] if other in path else [module, other]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if other not in state:
                visit(other, [*path, other])
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])


RECORDS = PACKAGE / "study" / "records.py"
LAYOUT = PACKAGE / "study" / "layout.py"
MANIFEST_FILE = re.compile(r"[\w.]*manifest[\w.]*\.json")


def _trees(*skip: Path):
    for path in sorted(PACKAGE.rglob("*.py")):
        if path not in skip:
            yield path.relative_to(PACKAGE).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
    }


def test_manifest_file_names_come_from_the_layout_only():
    found = [
        f"{name}:{node.lineno} {node.value!r}"
        for name, tree in _trees(LAYOUT)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and MANIFEST_FILE.fullmatch(node.value)
    ]
    assert found == [], "manifest file names outside study/layout.py: " + ", ".join(found)


def test_manifests_are_read_and_written_as_records_only():
    """No module but study/records.py reads or writes a manifest as JSON, or indexes one by a
    string key: the others go through read_manifest / write_manifest and typed fields."""
    found = []
    for name, tree in _trees(RECORDS):
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("read_json", "write_json")
                and any(n.endswith("_MANIFEST") for arg in node.args for n in _names(arg))
            ):
                found.append(f"{name}:{node.lineno} {node.func.id} of a manifest")
            if (
                isinstance(node, ast.Subscript)
                and "manifest" in _names(node.value)
                and isinstance(node.slice, ast.Constant)
                and isinstance(node.slice.value, str)
            ):
                found.append(f"{name}:{node.lineno} manifest[{node.slice.value!r}]")
    assert found == [], "; ".join(found)


def test_the_command_line_is_thin():
    lines = len((PACKAGE / "cli.py").read_text(encoding="utf-8").splitlines())
    assert lines <= CLI_LINES, f"cli.py has {lines} lines; keep it at most {CLI_LINES}"
