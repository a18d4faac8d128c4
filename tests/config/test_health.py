"""Liveness is trivial; readiness checks database, cache, broker and migrations, and names what is down (503)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import OperationalError, connection
from django.db.migrations.recorder import MigrationRecorder
from django.test import override_settings

from config.celery import app as celery_app

pytestmark = pytest.mark.django_db

# Nothing listens here (ops helper's port range): a real refused connection, not a mock.
DEAD_REDIS = "redis://127.0.0.1:8399/3"


def test_liveness_answers_without_dependencies(client):
    assert client.get("/health/").json() == {"status": "ok"}


def test_readiness_reports_every_part_ok(client):
    response = client.get("/ready/")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "cache": "ok", "broker": "ok", "migrations": "ok"}


def test_readiness_is_503_when_the_database_is_down(client, monkeypatch):
    def broken_cursor(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    response = client.get("/ready/")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["database"]
    assert body["checks"]["migrations"] == "skipped"


def test_readiness_is_503_when_the_cache_is_down(client):
    with override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                               "LOCATION": DEAD_REDIS}}):
        from django.core.cache import caches

        caches._settings = None  # the handler re-reads CACHES
        try:
            response = client.get("/ready/")
        finally:
            caches._settings = None
    assert response.status_code == 503
    assert response.json()["failing"] == ["cache"]
    assert response.json()["checks"]["cache"].startswith("fail:")


def test_readiness_is_503_when_the_broker_is_down(client, monkeypatch):
    real = celery_app.connection_for_write
    monkeypatch.setattr(celery_app, "connection_for_write", lambda *a, **kw: real(DEAD_REDIS))
    response = client.get("/ready/")
    assert response.status_code == 503
    assert response.json()["failing"] == ["broker"]


def test_readiness_is_503_when_a_migration_is_pending(client):
    latest = MigrationRecorder.Migration.objects.filter(app="members").order_by("-id").first()
    latest.delete()  # as if the code shipped a migration the database has not run yet
    response = client.get("/ready/")
    assert response.status_code == 503
    assert response.json()["failing"] == ["migrations"]
    assert f"members.{latest.name}" in response.json()["checks"]["migrations"]


@override_settings(ALLOWED_HOSTS=["learning.example"], SECURE_SSL_REDIRECT=True)
def test_probes_answer_by_ip_over_http_while_other_pages_keep_host_and_https_checks(client):
    assert client.get("/health/", HTTP_HOST="10.0.0.5:8000").status_code == 200
    assert client.get("/ready/", HTTP_HOST="10.0.0.5:8000").status_code == 200
    assert client.get("/accounts/login/", HTTP_HOST="10.0.0.5:8000").status_code == 400
    assert client.get("/accounts/login/", HTTP_HOST="learning.example").status_code == 301


def test_readiness_is_503_when_the_postgresql_server_is_stopped(tmp_path):
    """Not a mock: a process whose DATABASE_URL points at a PostgreSQL port nothing listens on (as after the
    database container stops), with the real Redis as cache and broker, answers 503 naming only the database."""
    code = ("import django, json; django.setup(); from django.test import Client; "
            "r = Client().get('/ready/', HTTP_HOST='10.0.0.5:8000'); print(r.status_code, json.dumps(r.json()))")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "DATABASE_URL", "REDIS_URL", "CELERY"))}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_DEBUG": "1", "VAR_DIR": str(tmp_path),
                "DATABASE_URL": "postgres://postgres@127.0.0.1:8398/retention_ops2_stopped",
                "REDIS_URL": "redis://127.0.0.1:6379/12", "CELERY_BROKER_URL": "redis://127.0.0.1:6379/12"})
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    status, body = result.stdout.strip().splitlines()[-1].split(" ", 1)
    assert status == "503"
    assert json.loads(body)["failing"] == ["database"]
    assert json.loads(body)["checks"] == {**json.loads(body)["checks"], "cache": "ok", "broker": "ok",
                                          "migrations": "skipped"}
