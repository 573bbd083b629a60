"""The package's shape: no import cycle, small modules, imports at the top, one of each helper.

The import graph is read from the source with :mod:`ast`, so imports inside functions count
as much as those at the top (a cycle hidden inside a function is still a cycle).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "seqdance"
MAX_LINES = 500
MAX_IMPORTS_IN_FUNCTIONS = 60  # of the package's own modules, lazy ones in cli/ included


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _targets(module: str, node: ast.Import | ast.ImportFrom, is_package: bool) -> list[str]:
    """The package modules an import statement loads (``from a import b`` may name module a.b)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        names = [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]
    return [name for name in names if name in MODULES and name != module]


def _inside_type_checking(node: ast.AST, parents: dict) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def _inside_function(node: ast.AST, parents: dict) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return True
    return False


def _scan():
    """(graph module -> imported modules, list of (module, line) of in-function own imports)."""
    graph: dict[str, set[str]] = defaultdict(set)
    in_functions: list[tuple[str, int]] = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            if _inside_type_checking(node, parents):
                continue
            targets = _targets(module, node, path.name == "__init__.py")
            graph[module].update(targets)
            if targets and _inside_function(node, parents):
                in_functions.append((module, node.lineno))
    return graph, in_functions


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), and self-loops."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(set(graph).union(*graph.values())):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_hidden_cycle():
    # a <- b at the top, b <- a inside a function: still a cycle
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert _cycles({"a": {"b"}, "b": {"c"}}) == []


def test_no_import_cycle_in_the_package():
    graph, _ = _scan()
    assert _cycles(graph) == []


def test_no_cycle_between_folders():
    """Folders (features, data, model, train, inference, ...) import each other one way only."""
    graph, _ = _scan()
    folders: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph.items():
        for target in targets:
            a, b = module.split(".")[:2], target.split(".")[:2]
            if a != b:
                folders[".".join(a)].add(".".join(b))
    assert _cycles(folders) == []


def test_the_heads_are_assembled_in_one_place():
    """Only ``SeqDanceModel.forward`` applies the output heads and their activations."""
    users = [m for m in _calls_in_source("activate(") if m != "seqdance.model.heads"]
    assert users == ["seqdance.model.seqdance"]


def test_few_imports_inside_functions():
    _, in_functions = _scan()
    assert len(in_functions) < MAX_IMPORTS_IN_FUNCTIONS, in_functions


def test_only_the_cli_imports_the_package_lazily():
    """Library modules import the package at the top; cli/ may be lazy, for a fast --help."""
    _, in_functions = _scan()
    assert [m for m in in_functions if not m[0].startswith("seqdance.cli")] == []


def test_no_module_over_500_lines():
    sizes = {m: len(p.read_text().splitlines()) for m, p in MODULES.items()}
    assert {m: n for m, n in sizes.items() if n > MAX_LINES} == {}


def _calls_in_source(needle: str) -> list[str]:
    return [m for m, p in MODULES.items() if needle in p.read_text()]


def test_one_cryst1_parser_and_one_compressed_file_opener():
    assert len(_calls_in_source('"CRYST1"')) == 1, _calls_in_source('"CRYST1"')
    assert len(_calls_in_source("gzip.open(")) == 1, _calls_in_source("gzip.open(")


def test_no_two_public_functions_share_a_name():
    """A public top-level function name means one thing in the whole package."""
    owners: dict[str, list[str]] = defaultdict(list)
    for module, path in MODULES.items():
        if ".cli" in module:  # Typer command functions are named after their verbs
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                owners[node.name].append(module)
    assert {name: mods for name, mods in owners.items() if len(mods) > 1} == {}


def test_no_option_dicts_travel_between_modules():
    """Scoring options travel as one ``ScoreOptions``, not as a ``score_options`` dict."""
    pattern = re.compile(r"\bscore_options\b")
    assert [m for m, p in MODULES.items() if pattern.search(p.read_text())] == []


@pytest.mark.parametrize("argv", [["--help"], ["score", "--help"], ["features", "md", "--help"]])
def test_help_does_not_import_heavy_libraries(argv):
    code = (
        "import sys\nfrom seqdance.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'mdtraj', 'pandas', 'h5py') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_source_cites_only_the_repository():
    """Docstrings cite docs/ in this repository, not notes that users do not have."""
    outside = ("seqdance-facts", "../shared", "/work/shared")
    assert [m for m, p in MODULES.items() if any(o in p.read_text() for o in outside)] == []
