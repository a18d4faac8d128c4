"""Celery: a task's registered name is where its code lives (module path + function name, no name= overrides), and
the one beat schedule in config/celery.py names only tasks a worker registers at start-up."""
from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

from config.celery import app

ROOT = Path(__file__).resolve().parents[2]
APPS = ("members", "community", "analytics", "config")
TASK_DECORATORS = {"shared_task", "task"}


def _project_modules():
    for package_name in APPS:
        package = importlib.import_module(package_name)
        yield package_name
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            if ".migrations" in info.name or ".management.commands" in info.name:
                continue
            yield info.name


def _project_tasks():
    for module_name in list(_project_modules()):
        importlib.import_module(module_name)
    return {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}


def test_every_task_is_registered_under_its_module_path_and_function_name():
    tasks = _project_tasks()
    assert tasks, "no project task registered: the walk found nothing"
    wrong = {name: f"{task.run.__module__}.{task.run.__name__}" for name, task in tasks.items()
             if name != f"{task.run.__module__}.{task.run.__name__}"}
    assert wrong == {}


def _decorator_keywords(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for decorator in node.decorator_list:
            if isinstance(decorator, ast.Call):
                func = decorator.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if called in TASK_DECORATORS:
                    yield node.name, [kw.arg for kw in decorator.keywords]


@pytest.mark.parametrize("app_name", APPS)
def test_no_task_decorator_overrides_the_name(app_name):
    overrides = [f"{path.relative_to(ROOT)}:{func}" for path in (ROOT / app_name).rglob("*.py")
                 for func, keywords in _decorator_keywords(path) if "name" in keywords]
    assert overrides == []


def test_the_beat_schedule_names_only_tasks_a_worker_registers_at_start_up():
    app.loader.import_default_modules()  # what `celery worker` does: Django apps' ready() plus autodiscovery
    registered = set(app.tasks.keys())
    schedule = app.conf.beat_schedule
    assert schedule
    unknown = {entry: spec["task"] for entry, spec in schedule.items() if spec["task"] not in registered}
    assert unknown == {}


def test_every_beat_entry_expires():
    missing = [entry for entry, spec in app.conf.beat_schedule.items()
               if not spec.get("options", {}).get("expires")]
    assert missing == []


def test_registering_the_tasks_does_not_load_the_ml_stack():
    """Every process registers the tasks at start (analytics.apps): a web worker or a management command that never
    trains must not pay scikit-learn's, scipy's and pandas' import (≈ 1.5 s of a 2.2 s start). Fresh interpreter."""
    import subprocess
    import sys

    script = ("import sys, django; django.setup(); from analytics.scoring import tasks; "
              "print(sorted(name for name in ('sklearn', 'scipy', 'pandas') if name in sys.modules))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(("queues", "preloaded"), [(["ml"], True), (None, True), (["default", "email"], False)])
def test_a_worker_of_the_ml_queue_imports_the_ml_code_before_it_forks_its_pool(queues, preloaded):
    """config.celery._preload, on worker_init: in a fresh interpreter, so what this test process imported decides
    nothing. A worker built (not started) with those queues has, or has not, imported the scoring code and
    scikit-learn; the pool processes it forks would inherit them."""
    import json
    import os
    import subprocess
    import sys

    script = ("import json, sys, django; django.setup(); from config.celery import app; "
              f"app.WorkController(queues={queues!r}, pool_cls='solo'); "
              "print(json.dumps(['analytics.scoring.services' in sys.modules, 'sklearn' in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings"})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [preloaded, preloaded]
