"""The dependency rule in docs/ARCHITECTURE.md, checked on the source: members (and community) never import analytics
models; they reach analytics through its entry functions (analytics.tracking: record_event, job_run)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# analytics.jobs hands out a JobRun instance; other apps go through analytics.tracking.job_run instead.
FORBIDDEN = ("analytics.models", "analytics.jobs")
# The demo generator stands in for months of other apps' traffic and bulk-writes their rows through the app registry;
# its module docstring says why. It is seed data, not runtime code, so it is the one named exception.
EXEMPT = {"members/demo/generator.py"}


def _forbidden_uses(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "get_model":
            # apps.get_model("analytics", "JobRun") / get_model("analytics.JobRun") is the same import by name.
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and str(first.value).split(".")[0] == "analytics":
                found.append(f"line {node.lineno}: get_model({first.value!r})")
            continue
        else:
            continue
        found += [f"line {node.lineno}: {m}" for m in modules
                  if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
    return found


def _analytics_modules_imported(source: str) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules |= {a.name for a in node.names if a.name.split(".")[0] == "analytics"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "analytics":
            modules.add(node.module)
    return modules


@pytest.mark.parametrize("snippet", [
    "from analytics.models import JobRun",
    "import analytics.models",
    "from analytics import models",
    "from analytics.jobs import tracked",
    "def f():\n    from analytics.models import Event",
    "from django.apps import apps\nJobRun = apps.get_model('analytics', 'JobRun')",
    "from django.apps import apps\nJobRun = apps.get_model('analytics.JobRun')",
])
def test_the_check_catches_every_way_of_reaching_an_analytics_model(snippet):
    assert _forbidden_uses(snippet)


def test_the_check_allows_the_entry_functions():
    assert not _forbidden_uses("from analytics.tracking import job_run, record_event\nimport analytics.tracking")


@pytest.mark.parametrize("app", ["members", "community"])
def test_app_never_imports_analytics_models(app):
    problems = {
        str(path.relative_to(ROOT)): uses
        for path in sorted((ROOT / app).rglob("*.py"))
        if path.relative_to(ROOT).as_posix() not in EXEMPT and (uses := _forbidden_uses(path.read_text(encoding="utf-8")))
    }
    assert problems == {}


def test_members_tasks_reach_analytics_only_through_tracking():
    for name in ("subscriptions/tasks.py", "referrals/tasks.py"):
        source = (ROOT / "members" / name).read_text(encoding="utf-8")
        assert _analytics_modules_imported(source) == {"analytics.tracking"}, name


# analytics reads other apps through their selectors; only its datasets/ingest layer imports their models.
MODEL_IMPORT_BUDGET = 3
MODEL_MODULES = ("members.models", "community.models")


def _model_imports(source: str) -> list[int]:
    """Lines importing members/community models: `from members.models import X`, `import members.models`,
    `from members import models`."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        if any(m in MODEL_MODULES for m in modules):
            lines.append(node.lineno)
    return lines


def test_the_model_import_count_sees_every_spelling():
    source = "from members.models import User\nimport community.models\nfrom members import models\nimport members\n"
    assert _model_imports(source) == [1, 2, 3]


def test_analytics_imports_other_apps_models_at_most_three_times():
    found = {
        f"{path.relative_to(ROOT).as_posix()}:{line}"
        for path in sorted((ROOT / "analytics").rglob("*.py")) if "migrations" not in path.parts
        for line in _model_imports(path.read_text(encoding="utf-8"))
    }
    assert len(found) <= MODEL_IMPORT_BUDGET, sorted(found)
    assert {entry.split(":")[0] for entry in found} <= {"analytics/ml/datasets.py", "analytics/ingest/platform.py"}
