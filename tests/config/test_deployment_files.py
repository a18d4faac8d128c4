"""The deployment files hold together (docker-compose config validates compose.yaml where docker-compose is
installed; this checks the structure everywhere)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_has_web_worker_beat_postgres_redis_and_volumes():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"web", "worker", "beat", "db", "redis"}
    assert [services[s]["command"] for s in ("web", "worker", "beat")] == [["web"], ["worker"], ["beat"]]
    assert {"pgdata", "media"} <= set(compose["volumes"])
    assert "pgdata:/var/lib/postgresql/data" in services["db"]["volumes"]
    assert "media:/var/lib/retention/media" in services["web"]["volumes"]


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="docker-compose is not installed (make compose installs it)")
def test_docker_compose_config_validates(tmp_path):
    env = tmp_path / ".env"
    env.write_text("POSTGRES_PASSWORD=x\nSECRET_KEY=y\n")
    result = subprocess.run(["docker-compose", "-f", str(ROOT / "compose.yaml"), "--env-file", str(env),
                             "--project-directory", str(tmp_path), "config", "-q"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_dockerfile_is_multi_stage_non_root_builds_static_and_messages_and_checks_health():
    text = (ROOT / "Dockerfile").read_text()
    assert text.count("\nFROM ") + text.startswith("FROM ") >= 2
    assert "USER app" in text and "HEALTHCHECK" in text
    assert "collectstatic" in text and "compilemessages" in text
    assert "--require-hashes -r requirements.txt" in text and "requirements-dev" not in text


def test_production_procfile_serves_with_gunicorn_and_dev_procfile_keeps_runserver():
    assert "gunicorn config.wsgi" in (ROOT / "Procfile.prod").read_text()
    assert "runserver" in (ROOT / "Procfile").read_text()


def test_lock_files_are_hashed_and_dev_includes_production():
    prod = (ROOT / "requirements.txt").read_text()
    dev = (ROOT / "requirements-dev.txt").read_text()
    assert "--hash=sha256:" in prod and "--hash=sha256:" in dev
    assert "pytest==" not in prod and "pytest==" in dev
    assert "django==" in dev.lower() and "gunicorn==" in prod
