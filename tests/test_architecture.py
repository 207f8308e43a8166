"""The arrows between Switchboard's packages, read from the source with ``ast``.

Imports point one way: no module imports itself back through others (type-only imports
count too: a cycle under ``TYPE_CHECKING`` still ties the modules together); the messages
service knows the hub only through its AppWebsocket layer; only storage modules import
the ORM or a database driver; the sans-I/O core (and the in-memory bus) never imports
asyncio. And the size rules: no module over 500 lines, no function over 40 and the
median function at most 8 (a function counted from its ``def`` line to its last,
docstring and signature included), so that every module stays one concept a newcomer
can read at once.
"""

from __future__ import annotations

import ast
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("signaling", "messages_service", "filebuffers", "tracing", "config")

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 40
MAX_MEDIAN_FUNCTION_LINES = 8

TABLE_DEFINITIONS = frozenset({"messages_service.storage.migrations._tables"})
"""Functions that only return the text of a table definition (DDL), longer by nature."""


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    tree: ast.Module
    lines: int


@cache
def modules() -> dict[str, Module]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            text = path.read_text(encoding="utf-8")
            name = ".".join(parts)
            found[name] = Module(name, path, ast.parse(text), len(text.splitlines()))
    return found


def imported(module: Module) -> Iterator[str]:
    """Every module name ``module`` imports, anywhere in it (functions and
    ``TYPE_CHECKING`` blocks included), resolved to absolute dotted names."""
    is_package = module.path.name == "__init__.py"
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _base(module.name, node, is_package)
            for alias in node.names:  # ``from package import submodule`` names the module
                yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules() else base


def _base(name: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    package = name.split(".") if is_package else name.split(".")[:-1]
    package = package[: len(package) - (node.level - 1)]
    return ".".join([*package, *([node.module] if node.module else [])])


def graph() -> dict[str, set[str]]:
    """Our modules and the ones of ours each imports."""
    known = modules()
    return {
        name: {target for target in imported(module) if target in known and target != name}
        for name, module in known.items()
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(edges[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while (member := stack.pop()) != node:
                component.append(member)
            component.append(node)
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def function_lengths() -> Iterator[tuple[str, int]]:
    """Every function's qualified name and its length in lines, from its ``def`` line to
    its last (decorators aside, docstring included)."""
    for module in modules().values():
        yield from _functions(module.name, module.tree)


def _functions(prefix: str, node: ast.AST) -> Iterator[tuple[str, int]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            name = f"{prefix}.{child.name}"
            if child.end_lineno is not None:
                yield name, child.end_lineno - child.lineno + 1
            yield from _functions(name, child)
        elif isinstance(child, ast.ClassDef):
            yield from _functions(f"{prefix}.{child.name}", child)
        else:
            yield from _functions(prefix, child)


# --- the tests ------------------------------------------------------------------------------


def test_the_packages_are_found() -> None:
    names = modules()
    assert {"signaling.core.switch", "messages_service.app", "config.loader"} <= set(names)
    assert "signaling.core.registry" in graph()["signaling.core.switch"]


def test_no_import_cycles() -> None:
    edges = graph()
    assert cycles(edges) == []


def test_a_cycle_would_be_found() -> None:
    """The check above can fail: a made-up cycle through three modules is reported."""
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c"]]


def test_the_messages_service_knows_the_hub_only_by_its_appwebsocket_layer() -> None:
    wrong = sorted(
        f"{module.name} imports {target}"
        for module in modules().values()
        if module.name.startswith("messages_service")
        for target in imported(module)
        if target.split(".")[0] == "signaling"
        and not (target + ".").startswith("signaling.appwebsocket.")
    )
    assert wrong == []


DATABASE_LIBRARIES = frozenset({"tortoise", "asyncpg", "aiosqlite", "sqlite3"})
"""The ORM and the database drivers: statements are storage's business alone."""


def test_only_storage_modules_import_the_orm_or_a_database_driver() -> None:
    wrong = sorted(
        f"{module.name} imports {target}"
        for module in modules().values()
        if "storage" not in module.name.split(".")
        for target in imported(module)
        if target.split(".")[0] in DATABASE_LIBRARIES
    )
    assert wrong == []


SANS_IO = ("signaling.core", "signaling.bus.memory")
"""The sans-I/O parts: the switch's core, and the in-memory bus that drives several of
them in one process for tests. Time and sockets reach them only through the I/O layer."""


def asyncio_imports(found: Iterator[Module]) -> list[str]:
    """The modules of ``SANS_IO`` among ``found`` that import asyncio, however they do."""
    return sorted(
        f"{module.name} imports {target}"
        for module in found
        if any(module.name == part or module.name.startswith(f"{part}.") for part in SANS_IO)
        for target in imported(module)
        if target.split(".")[0] == "asyncio"
    )


def test_the_sans_io_parts_never_import_asyncio() -> None:
    assert asyncio_imports(iter(modules().values())) == []


def test_an_asyncio_import_in_the_core_would_be_found() -> None:
    """The check above can fail: made-up core modules that import asyncio are reported,
    a made-up I/O module that does is not."""
    made_up = [
        ("signaling.core.made_up", "import asyncio\n"),
        ("signaling.core.nodes.made_up", "def later():\n    from asyncio import sleep\n"),
        ("signaling.bus.memory", "from asyncio.queues import Queue\n"),
        ("signaling.hub.made_up", "import asyncio\n"),
    ]
    found = (
        Module(name, ROOT / "made_up.py", ast.parse(text), text.count("\n"))
        for name, text in made_up
    )
    assert asyncio_imports(found) == [
        "signaling.bus.memory imports asyncio.queues",
        "signaling.core.made_up imports asyncio",
        "signaling.core.nodes.made_up imports asyncio",
    ]


def test_no_module_over_500_lines() -> None:
    long = sorted(
        (module.lines, name)
        for name, module in modules().items()
        if module.lines > MAX_MODULE_LINES
    )
    assert long == []


def test_no_function_over_40_lines() -> None:
    long = sorted(
        (lines, name)
        for name, lines in function_lengths()
        if lines > MAX_FUNCTION_LINES and name not in TABLE_DEFINITIONS
    )
    assert long == []


def test_the_median_function_is_at_most_8_lines() -> None:
    lengths = [lines for _, lines in function_lengths()]
    assert len(lengths) > 1000  # every package's functions, not a handful
    assert statistics.median(lengths) <= MAX_MEDIAN_FUNCTION_LINES


def test_a_function_is_counted_from_its_def_line_docstring_included() -> None:
    """The length the rules above read: signature, docstring and body, not decorators."""
    text = '@cache\ndef f(\n    a: int,\n) -> None:\n    """One.\n\n    Two."""\n    return None\n'
    assert list(_functions("m", ast.parse(text))) == [("m.f", 7)]
