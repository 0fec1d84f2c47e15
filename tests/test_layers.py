"""The arrows of ``DESIGN.md`` hold: ``jose`` imports nothing of the rest, the guard never needs
the provider, and inside the provider no component (services, store, cache, settings) reaches
back to ``provider.py``, to the flows that use it, or to the HTTP edge.

Imports are read from the source (``ast``), relative ones resolved, so a lazy import inside a
function counts as much as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def _module_of(path: Path) -> str:
    return ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path) -> set[str]:
    """Every ``tessera`` module ``path`` imports, absolute."""
    module = _module_of(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "tessera" or name.startswith("tessera.")}


GRAPH = {
    _module_of(path): _imports(path)
    for path in sorted((SRC / "tessera").rglob("*.py"))
    if "migrations" not in path.parts
}


def _within(name: str, room: str) -> bool:
    return name == room or name.startswith(room + ".")


# (room, rooms it must never import)
RULES = [
    ("tessera.jose", ["tessera.guard", "tessera.idp", "tessera.cli"]),
    ("tessera.guard", ["tessera.idp", "tessera.cli"]),
    ("tessera.idp", ["tessera.cli"]),
    *(
        (component, ["tessera.idp.provider", "tessera.idp.flows", "tessera.idp.http"])
        for component in (
            "tessera.idp.services",
            "tessera.idp.store",
            "tessera.idp.cache",
            "tessera.idp.config",
            "tessera.idp.errors",
        )
    ),
    ("tessera.idp.flows", ["tessera.idp.http"]),
    ("tessera.idp.provider", ["tessera.idp.flows", "tessera.idp.http"]),
]


def test_the_graph_covers_every_room() -> None:
    for room, _ in RULES:
        assert any(_within(module, room) for module in GRAPH), room


@pytest.mark.parametrize(("room", "forbidden"), RULES, ids=[room for room, _ in RULES])
def test_no_arrow_points_back(room: str, forbidden: list[str]) -> None:
    arrows = sorted(
        f"{module} -> {name}"
        for module, names in GRAPH.items()
        if _within(module, room)
        for name in names
        if any(_within(name, target) for target in forbidden)
    )
    assert arrows == []


def test_relative_imports_are_resolved() -> None:
    """What the rules read is right: ``http/oauth.py`` reaches the provider and a flow only
    through relative imports (``from ..provider import Provider``)."""
    oauth = GRAPH["tessera.idp.http.oauth"]
    assert {"tessera.idp.provider", "tessera.idp.flows.grants"} <= oauth
    assert "tessera.jose" in GRAPH["tessera.guard.guard"] or any(
        _within(name, "tessera.jose") for name in GRAPH["tessera.guard.guard"]
    )
