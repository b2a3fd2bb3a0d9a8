"""The import graph of app/: packages in layers, nothing imports upwards, no cycles.

Every module under app/ is read with `ast` (not imported), and every import counts: at the
top of a module, inside a function (lazy), or under `if TYPE_CHECKING:`. An import is
reduced to the pair (package of the importing file, package it reaches), where a package is
app's top-level folder, and the modules at app's root (main.py, cli.py, ...) form the top
wiring layer. A failure prints each offending import as `file:line  from -> to  (import)`.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

# The layers of docs/STYLE.md, from the bottom. A package may import its own modules and any
# package of a LOWER layer; packages that share a layer are siblings and import neither each
# other nor anything above. Among the domains: transfers stands on call backs (a failed
# transfer creates a call back request), reports read transfers and signposts, and the other
# domains stand on their own.
LAYERS: list[frozenset[str]] = [
    frozenset({"core"}),  # settings, database, errors, auth primitives, clock: no domain
    frozenset({"protocol"}),  # the route table
    frozenset({"audit"}),
    frozenset({"idempotency"}),
    frozenset({"outbox"}),  # a mechanism: knows no sender by name
    frozenset({"callbacks", "feedback", "signposts", "keys", "health"}),
    frozenset({"transfers"}),
    # housekeeping owns every retention rule: above the domains whose data it purges.
    frozenset({"reports", "housekeeping"}),
    frozenset({"web"}),
    frozenset({"<wiring>"}),  # app/main.py, cli.py, asgi.py, models.py, __main__.py
]
WIRING = "<wiring>"
CORE = "core"

APP = Path(__file__).resolve().parent.parent / "app"

LEVEL = {package: level for level, layer in enumerate(LAYERS) for package in layer}


@dataclass(frozen=True)
class Edge:
    """One import of one package by another, and where it is written."""

    source: str  # importing package
    target: str  # imported package
    file: str  # path relative to the repository
    line: int
    statement: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}  {self.source} -> {self.target}  ({self.statement})"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(APP.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package_of(module: str) -> str | None:
    """app.transfers.service -> transfers; app.main -> <wiring>; outside app -> None."""
    parts = module.split(".")
    if parts[0] != "app":
        return None
    if len(parts) == 1:
        return WIRING
    top = parts[1]
    return top if (APP / top).is_dir() else WIRING


def _imported_modules(tree: ast.Module, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in the tree, relative ones resolved."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if not is_package:
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # `from app import transfers` reaches app.transfers, not app itself.
            found += [(node.lineno, f"{stem}.{alias.name}") for alias in node.names]
    return found


def _edges() -> list[Edge]:
    edges: dict[tuple[str, int, str], Edge] = {}
    for path in sorted(APP.rglob("*.py")):
        module = _module_name(path)
        source = _package_of(module)
        assert source is not None
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        lines = path.read_text(encoding="utf-8").splitlines()
        for line, imported in _imported_modules(tree, module, path.name == "__init__.py"):
            target = _package_of(imported)
            if target is None or target == source:
                continue
            file = str(path.relative_to(APP.parent))
            edges.setdefault(
                (file, line, target),
                Edge(source, target, file, line, statement=lines[line - 1].strip()),
            )
    return sorted(edges.values(), key=lambda edge: (edge.file, edge.line, edge.target))


def _report(title: str, edges: list[Edge]) -> str:
    return "\n".join([f"{title} ({len(edges)}):", *(f"  {edge}" for edge in edges)])


def _cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected components of more than one package (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
        graph.setdefault(edge.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_every_package_has_a_layer() -> None:
    """A new top-level package must be placed in LAYERS before it can be checked."""
    packages = {p.name for p in APP.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages - LEVEL.keys() == set(), "add these packages to LAYERS"
    assert {edge.target for edge in _edges()} <= LEVEL.keys()


def test_no_package_cycles() -> None:
    edges = _edges()
    cycles = _cycles(edges)
    arrows = {(e.source, e.target) for e in edges}
    pairs = sorted((a, b) for a, b in arrows if a < b and (b, a) in arrows)
    details = (
        ["packages on one cycle: " + ", ".join(cycle) for cycle in cycles]
        + [
            _report(
                f"{a} <-> {b}",
                [e for e in edges if {e.source, e.target} == {a, b}],
            )
            for a, b in pairs
        ]
        + [
            _report(
                "imports on a cycle that run against the layers (cut these)",
                [
                    e
                    for e in edges
                    if any({e.source, e.target} <= set(c) for c in cycles)
                    and LEVEL[e.target] >= LEVEL[e.source]
                ],
            )
        ]
    )
    assert cycles == [], "package cycles:\n" + "\n".join(details)


def test_core_imports_no_domain() -> None:
    offending = [e for e in _edges() if e.source == CORE]
    assert offending == [], _report("imports from core/ to a package above it", offending)


def test_imports_follow_the_layers() -> None:
    offending = [e for e in _edges() if LEVEL[e.target] >= LEVEL[e.source]]
    assert offending == [], _report("imports across or up the layers", offending)


@pytest.mark.parametrize("package", ["outbox", "housekeeping"])
def test_the_outbox_and_housekeeping_import_only_below_them(package: str) -> None:
    """The outbox is a mechanism (it knows no sender by name) and housekeeping sits above what
    it purges; nothing below either reaches up to it (core's metrics included)."""
    up = [e for e in _edges() if e.source == package and LEVEL[e.target] >= LEVEL[package]]
    into = [e for e in _edges() if e.target == package and LEVEL[e.source] <= LEVEL[package]]
    assert up + into == [], _report(f"imports against the layers around {package}", up + into)


def test_the_graph_reader_sees_lazy_and_relative_imports() -> None:
    """The reader itself: an import inside a function and a relative one both count."""
    tree = ast.parse(
        "from . import service\n"
        "from ..outbox.models import OutboxMessage\n"
        "def later():\n"
        "    from app.transfers import models\n"
    )
    found = _imported_modules(tree, "app.callbacks.retention", is_package=False)
    assert [(line, _package_of(name)) for line, name in found] == [
        (1, "callbacks"),
        (2, "outbox"),
        (4, "transfers"),
    ]
    assert _cycles(
        [Edge("a", "b", "f", 1, ""), Edge("b", "c", "f", 2, ""), Edge("c", "a", "f", 3, "")]
    ) == [["a", "b", "c"]]


pytestmark = pytest.mark.database_independent
