"""The rules of docs/architecture.md, checked on the source: packages import only the
layers below them, nothing imports in a circle, the sans-IO SIP core touches no socket or
event loop, and every public class says what it is for. A break fails here, naming the
modules."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "atende"

# From the top down: a package may import the packages of the layers below its own, never
# those above it or its siblings in the same layer. The first layer puts the rest together
# and may import anything. "atende" is the package's own __init__.
LAYERS: list[set[str]] = [
    {"__main__", "cli", "server", "config"},
    {"dashboard"},
    {"api"},
    {"bridge", "cluster"},
    {"calls"},
    {"agent", "telephony", "webhooks"},
    {"channels"},
    {"providers"},
    {"media"},
    {"sip", "esl"},
    {"store"},
    {"aio", "atende", "egress", "memory", "native"},
]
SANS_IO = ("atende.sip", "atende.esl")
IO_MODULES = {"asyncio", "socket", "ssl", "selectors", "threading", "concurrent"}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module
    line: int
    typing_only: bool  # inside ``if TYPE_CHECKING:``


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _typing_block(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, source: str, typing_only: bool = False) -> Iterator[Import]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield Import(source, node.module, node.lineno, typing_only)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(source, alias.name, node.lineno, typing_only)
        else:
            yield from _imports(node, source, typing_only or _typing_block(node))


def all_imports() -> list[Import]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        found.extend(_imports(ast.parse(path.read_text(), str(path)), name))
    return found


def package_of(module: str) -> str:
    """The top-level part of atende a module belongs to (its subpackage or module)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layer_of(package: str) -> int:
    for index, layer in enumerate(LAYERS):
        if package in layer:
            return index
    raise AssertionError(f"atende.{package} is in no layer: add it to LAYERS and to "
                         "docs/architecture.md")


def test_every_package_has_a_layer() -> None:
    for path in PACKAGE.iterdir():
        if path.name.startswith(("_", ".")) and path.name != "__main__.py":
            continue
        if path.is_dir() or path.suffix == ".py":
            layer_of(path.stem)


def test_imports_point_down() -> None:
    wrong = []
    for imp in all_imports():
        if not imp.target.startswith("atende"):
            continue
        source, target = package_of(imp.source), package_of(imp.target)
        if source == target:
            continue
        s, t = layer_of(source), layer_of(target)
        if s != 0 and t <= s:
            wrong.append(f"{imp.source}:{imp.line} imports {imp.target} "
                         f"({source} may not import {target})")
    assert not wrong, "imports that point up or sideways:\n" + "\n".join(wrong)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles_between_packages() -> None:
    edges: dict[str, set[str]] = {}
    for imp in all_imports():
        if imp.target.startswith("atende"):
            source, target = package_of(imp.source), package_of(imp.target)
            if source != target:
                edges.setdefault(source, set()).add(target)
    assert _cycles(edges) == []


def test_no_import_cycles_between_modules() -> None:
    """Not even through imports for type checkers only: a cycle there is two modules that
    need each other, which the next change turns into a run-time one."""
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for imp in all_imports():
        if not imp.target.startswith("atende"):
            continue
        # ``from atende.x import y`` may name the module atende.x.y
        target = imp.target
        edges.setdefault(imp.source, set()).add(target if target in modules else
                                                target.rsplit(".", 1)[0])
    assert _cycles(edges) == []


def test_the_sip_core_does_no_io() -> None:
    wrong = [f"{imp.source}:{imp.line} imports {imp.target}" for imp in all_imports()
             if imp.source.startswith(SANS_IO) and imp.target.split(".")[0] in IO_MODULES]
    assert not wrong, "the sans-IO SIP core must stay free of I/O:\n" + "\n".join(wrong)


def test_the_agent_reads_no_stored_row() -> None:
    """A call's agent gets its assistant as a profile of plain values (calls/ builds it from
    the row and decrypts its keys): the conversation never touches the database or the
    secret box."""
    wrong = [f"{imp.source}:{imp.line} imports {imp.target}" for imp in all_imports()
             if package_of(imp.source) == "agent" and package_of(imp.target) == "store"]
    assert not wrong, "\n".join(wrong)


def test_the_checker_sees_what_it_checks() -> None:
    """The rules above would pass on nothing at all: make sure they read real imports,
    including those only for type checkers."""
    imports = all_imports()
    assert any(i.source == "atende.channels.sip.ua" and i.target == "asyncio" for i in imports)
    assert any(i.typing_only for i in imports)
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_every_public_class_has_a_docstring() -> None:
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if (isinstance(node, ast.ClassDef) and not node.name.startswith("_")
                    and ast.get_docstring(node) is None):
                missing.append(f"{module_name(path)}.{node.name}")
    assert not missing, "public classes without a docstring: " + ", ".join(missing)
