"""The shape of the code: rooms import one way, nothing imports in a circle, widgets stay out of rules.

Every import is read from the source (function-level ones included, since a
lazy import is still a dependency), so a circle that only closes at run time
is caught here and not by a user.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("console", "widgets", "probes", "themes")
#: console's rooms, highest first: a room may import only the rooms after it.
ROOMS = ("commands", "ui", "incident", "remote", "diagnosis", "engine", "settings")
#: What widgets may read from console: the store, the engine's findings and target states, the shared number
#: formats; nothing that runs rules.
WIDGETS_MAY_IMPORT = ("console.engine.store", "console.engine.stats", "console.engine.units",
                      "console.engine.target_state", "console.diagnosis.finding", "console.diagnosis.engine")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules that ``path`` imports (``from a import b`` counts b when b is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name in modules:
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(path, modules) - {name} for name, path in modules.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def room_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "console" and len(parts) > 2 and parts[1] in ROOMS else None


def test_find_cycle_sees_a_circle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_between_modules() -> None:
    assert find_cycle(graph()) is None


def test_no_import_circle_between_packages_or_rooms() -> None:
    def unit(module: str) -> str:
        room = room_of(module)
        return f"console.{room}" if room else module.split(".")[0] if not module.startswith("console.") else module

    rooms: dict[str, set[str]] = {}
    for module, deps in graph().items():
        rooms.setdefault(unit(module), set()).update(unit(d) for d in deps if unit(d) != unit(module))
    assert find_cycle(rooms) is None


def test_rooms_import_only_the_rooms_below_them() -> None:
    wrong = []
    for module, deps in graph().items():
        room = room_of(module)
        for dep in deps:
            dep_room = room_of(dep)
            if room and dep_room and ROOMS.index(dep_room) < ROOMS.index(room):
                wrong.append(f"{module} -> {dep}")
            if dep.startswith("console.commands") and not module.startswith("console.commands"):
                wrong.append(f"{module} -> {dep}")
    assert wrong == []


def test_widgets_read_the_store_and_findings_only() -> None:
    wrong = [f"{module} -> {dep}" for module, deps in graph().items() if module.startswith("widgets")
             for dep in deps if dep.startswith("console") and dep not in WIDGETS_MAY_IMPORT]
    assert wrong == []


def test_probes_never_import_console_widgets_or_textual() -> None:
    wrong = [f"{module} -> {dep}" for module, deps in graph().items() if module.startswith("probes")
             for dep in deps if not dep.startswith("probes")]
    assert wrong == []
    for path in (ROOT / "probes").rglob("*.py"):
        assert "textual" not in {n.split(".")[0] for n in _all_imports(path)}, path


def _all_imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_every_room_says_what_lives_there_and_what_it_may_import() -> None:
    for room in ROOMS:
        doc = ast.get_docstring(ast.parse((ROOT / "console" / room / "__init__.py").read_text()))
        assert doc and "May import" in doc, room


def test_timeouts_go_through_probes_runtime_within() -> None:
    """asyncio.wait_for on 3.11 can swallow a cancellation (CPython gh-86296): a task that will not stop.

    It hung a probe's teardown for 300 s and an SSH reader after `diagnose` ended; every bounded
    await goes through probes.runtime.within, which uses asyncio.timeout where it exists.
    """
    offenders = []
    for path in sorted(ROOT.glob("*/**/*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] not in ("console", "probes", "widgets") or rel == Path("probes/runtime.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "wait_for" and \
                    isinstance(node.value, ast.Name) and node.value.id == "asyncio":
                offenders.append(f"{rel}:{node.lineno}")
    assert offenders == []
