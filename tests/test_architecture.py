"""The import rules of DESIGN.md.

Apps talk through services/selectors, one way, no cycles; nothing but Celery's autodiscovery
imports a `tasks` module; and no product function imports a project module in its body (the
usual way to hide a cycle).
"""

import ast
from pathlib import Path

import pytest

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
# The product's code: the apps and the wiring. Tests and migrations are not the product.
PRODUCT = (*APPS, "config")
NOT_PRODUCT = {"tests", "migrations"}
# Function-body imports of project modules that do not dodge a cycle, each with its reason.
BODY_IMPORTS_ALLOWED = {
    ("risk/apps.py", "ready"): (
        "AppConfig.ready() connects the Celery worker signals that warm the production models;"
        " the warm-up reads models, which exist only once the app registry is ready"
    ),
    ("decisions/apps.py", "ready"): (
        "AppConfig.ready() registers the review queue's reader for the Prometheus gauges; the"
        " selectors it reads import models, which exist only once the app registry is ready"
    ),
    ("records/apps.py", "ready"): (
        "AppConfig.ready() registers the drift reader for the Prometheus gauge; the selectors it"
        " reads import models, which exist only once the app registry is ready"
    ),
    ("core/apps.py", "ready"): (
        "AppConfig.ready() is where Django documents start-up registration: importing core.schema"
        " registers the drf-spectacular auth extension once the app registry is ready"
    ),
}


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
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


def product_files() -> list[Path]:
    return [
        path
        for top in PRODUCT
        if (ROOT / top).is_dir()
        for path in sorted((ROOT / top).rglob("*.py"))
        if not NOT_PRODUCT & set(path.relative_to(ROOT).parts)
    ]


def imported_modules(node: ast.Import | ast.ImportFrom, path: Path) -> list[str]:
    """Absolute names of what one import statement imports (relative imports resolved)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    package = list(path.relative_to(ROOT).parent.parts)
    base = ".".join(package[: len(package) - node.level + 1] if node.level else [])
    module = ".".join(part for part in (base, node.module or "") if part)
    return [f"{module}.{alias.name}" for alias in node.names]


def imports_with_function(path: Path) -> list[tuple[int, str, str | None]]:
    """Every import in a file, with the function whose body holds it (None at module level)."""
    found: list[tuple[int, str, str | None]] = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                found.extend(
                    (child.lineno, module, function) for module in imported_modules(child, path)
                )
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, child.name)
            else:
                visit(child, function)

    visit(ast.parse(path.read_text(), filename=str(path)), None)
    return found


def task_import_violations() -> list[str]:
    problems = []
    for path in product_files():
        for line, module, _ in imports_with_function(path):
            parts = module.split(".")
            if parts[0] in APPS and "tasks" in parts[1:]:
                problems.append(
                    f"{path.relative_to(ROOT)}:{line} imports {module}:"
                    " only Celery's autodiscovery imports tasks; enqueue by name"
                )
    return problems


def function_body_import_violations() -> list[str]:
    problems = []
    for path in product_files():
        relative = path.relative_to(ROOT).as_posix()
        for line, module, function in imports_with_function(path):
            if function is None or module.split(".")[0] not in PRODUCT:
                continue
            if (relative, function) not in BODY_IMPORTS_ALLOWED:
                problems.append(f"{relative}:{line} imports {module} inside {function}()")
    return problems


@pytest.fixture
def fake_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty tree of the apps (each with a tests/ folder) that the checkers read instead."""
    for app in APPS:
        (tmp_path / app / "tests").mkdir(parents=True)
    monkeypatch.setattr("tests.test_architecture.ROOT", tmp_path)
    return tmp_path


def test_it_keeps_the_dependency_direction_between_apps():
    assert violations() == []


def test_it_detects_a_forbidden_import(fake_root):
    """The checker itself must fail on a violation (so an empty list means something)."""
    (fake_root / "core" / "leak.py").write_text("from decisions.models import Rule\n")

    assert violations() == [
        "core/leak.py:1 imports decisions.models: core may not depend on decisions"
    ]


def test_nothing_in_the_product_imports_a_tasks_module():
    assert task_import_violations() == []


def test_it_detects_an_import_of_a_tasks_module(fake_root):
    (fake_root / "campaigns" / "services.py").write_text("from campaigns.tasks import send\n")
    (fake_root / "decisions" / "enqueue.py").write_text("from . import tasks\n")
    (fake_root / "decisions" / "tests" / "test_tasks.py").write_text("from decisions import tasks")

    assert task_import_violations() == [
        "decisions/enqueue.py:1 imports decisions.tasks:"
        " only Celery's autodiscovery imports tasks; enqueue by name",
        "campaigns/services.py:1 imports campaigns.tasks.send:"
        " only Celery's autodiscovery imports tasks; enqueue by name",
    ]


def test_no_product_function_imports_a_project_module_in_its_body():
    assert function_body_import_violations() == []


def test_it_detects_a_function_body_import(fake_root):
    (fake_root / "core" / "apps.py").write_text("def ready():\n    from core import schema\n")
    (fake_root / "risk" / "scoring.py").write_text(
        "from core import errors\n"
        "\n"
        "def model_load():\n"
        "    import sklearn\n"
        "    from risk import models\n"
        "    if True:\n"
        "        from .training import fit\n"
    )
    (fake_root / "risk" / "tests" / "test_scoring.py").write_text(
        "def test_it():\n    from risk import models\n"
    )

    assert function_body_import_violations() == [
        "risk/scoring.py:5 imports risk.models inside model_load()",
        "risk/scoring.py:7 imports risk.training.fit inside model_load()",
    ]
