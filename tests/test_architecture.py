"""The dependency rule of DESIGN.md: apps talk through services/selectors, one way, no cycles."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("core", "decisions", "risk", "records", "campaigns")
# Which apps each app may import (besides itself).
ALLOWED = {
    "core": set(),
    "risk": {"core"},
    "records": {"core", "risk"},
    "campaigns": {"core"},
    "decisions": {"core", "records", "campaigns"},
}
# What another app may reach into: its public write and read surfaces (and its error classes).
PUBLIC_MODULES = {"services", "selectors", "exceptions"}


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.extend(
                (node.lineno, f"{node.module}.{alias.name}")
                if node.module in APPS
                else (node.lineno, node.module)
                for alias in node.names
            )
    return found


def violations() -> list[str]:
    problems = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            is_test = "tests" in path.parts
            for line, module in imports_of(path):
                target = module.split(".")[0]
                if target not in APPS or target == app:
                    continue
                where = f"{path.relative_to(ROOT)}:{line} imports {module}"
                if target not in ALLOWED[app]:
                    problems.append(f"{where}: {app} may not depend on {target}")
                elif (
                    not is_test
                    and module.split(".")[1:2]
                    and module.split(".")[1] not in PUBLIC_MODULES
                ) and target != "core":
                    problems.append(f"{where}: use {target}.services or {target}.selectors")
    return problems


def test_it_keeps_the_dependency_direction_between_apps():
    assert violations() == []


def test_it_detects_a_forbidden_import(tmp_path, monkeypatch):
    """The checker itself must fail on a violation (so an empty list means something)."""
    fake_app = tmp_path / "core"
    fake_app.mkdir()
    (fake_app / "leak.py").write_text("from decisions.models import Rule\n")
    for app in APPS[1:]:
        (tmp_path / app).mkdir()
    monkeypatch.setattr("tests.test_architecture.ROOT", tmp_path)

    assert violations() == [
        "core/leak.py:1 imports decisions.models: core may not depend on decisions"
    ]
