"""Production settings (issue 13 item 12, issue 16 item 3): fail closed, every security setting from the
environment, `check --deploy` clean with the environment the README documents, a CSP the pages satisfy."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.adversarial
ROOT = Path(__file__).resolve().parents[2]

# The README's "Production" environment (the values an operator sets), minus the servers: settings only.
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "SECRET_KEY": "x7#k2!prod-like-secret-with-enough-entropy-0123456789-abcdefghijklmnop",
    "ALLOWED_HOSTS": "learning.example",
    "CSRF_TRUSTED_ORIGINS": "https://learning.example",
    "SITE_URL": "https://learning.example",
    "TRUSTED_PROXY_COUNT": "1",
    "SECURE_HSTS_PRELOAD": "1",
}


def _run(code_or_args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "SECRET", "SECURE", "SESSION_COOKIE",
                                                                       "CSRF", "REDIS_URL", "DATABASE_URL"))}
    return subprocess.run([sys.executable, *code_or_args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**base, "VAR_DIR": str(tmp_path), **env})


def _setting(names: str, env: dict[str, str], tmp_path: Path) -> str:
    code = f"import django; django.setup(); from django.conf import settings as s; print([getattr(s, n, None) for n in {names.split()!r}])"
    result = _run(["-c", code], env, tmp_path)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_check_deploy_is_clean_with_the_production_environment(tmp_path):
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], PRODUCTION_ENV, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_debug_is_off_unless_asked_for(tmp_path):
    assert _setting("DEBUG", PRODUCTION_ENV, tmp_path) == "[False]"
    assert _setting("DEBUG", {**PRODUCTION_ENV, "DJANGO_DEBUG": "1"}, tmp_path) == "[True]"


@pytest.mark.parametrize("start", [
    ["-c", "import config.wsgi"],  # gunicorn config.wsgi:application
    ["-c", "import django; from config.celery import app; django.setup()"],  # celery -A config worker / beat
    ["manage.py", "check"],  # a production shell that set other variables and DJANGO_DEBUG=0 but forgot the key
])
def test_it_refuses_to_start_without_a_secret_key_in_production(tmp_path, start):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"}
    if start[0] == "manage.py":
        env["DJANGO_DEBUG"] = "0"
    result = _run(start, env, tmp_path)
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_manage_py_on_a_clean_checkout_uses_the_development_settings(tmp_path):
    # Nothing set at all (a new developer, or a CI step running `manage.py makemigrations --check`): it works, and
    # says which settings it chose.
    result = _run(["manage.py", "makemigrations", "--check", "--dry-run"], {}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "using development settings" in result.stderr


def test_security_settings_come_from_the_environment(tmp_path):
    names = "SECURE_SSL_REDIRECT SECURE_HSTS_SECONDS SESSION_COOKIE_SECURE CSRF_COOKIE_SECURE CSRF_TRUSTED_ORIGINS"
    assert _setting(names, PRODUCTION_ENV, tmp_path) == "[True, 31536000, True, True, ['https://learning.example']]"
    overridden = {**PRODUCTION_ENV, "SECURE_SSL_REDIRECT": "0", "SECURE_HSTS_SECONDS": "60"}
    assert _setting("SECURE_SSL_REDIRECT SECURE_HSTS_SECONDS", overridden, tmp_path) == "[False, 60]"


def test_the_cache_is_shared_never_locmem_outside_tests(tmp_path):
    """The shared cache is never per-process. Only the rendered pages (under a version kept in the shared cache)
    and, without Redis, the API throttle counts (each worker allowing 1/API_THROTTLE_PROCESSES) are per process."""
    caches, processes = ast.literal_eval(_setting("CACHES API_THROTTLE_PROCESSES",
                                                  {**PRODUCTION_ENV, "WEB_CONCURRENCY": "4"}, tmp_path))
    assert caches["default"]["BACKEND"].endswith("DatabaseCache")
    assert caches["pages"]["BACKEND"].endswith("LocMemCache") and caches["throttle"]["BACKEND"].endswith("LocMemCache")
    assert processes == 4
    caches, processes, sessions = ast.literal_eval(_setting(
        "CACHES API_THROTTLE_PROCESSES SESSION_ENGINE", {**PRODUCTION_ENV, "REDIS_URL": "redis://127.0.0.1:6379/3"},
        tmp_path))
    assert caches["default"]["BACKEND"].endswith("RedisCache") and caches["throttle"] == caches["default"]
    assert processes == 1 and sessions.endswith("cached_db")


def test_migrate_creates_the_database_cache_table(tmp_path):
    result = _run(["manage.py", "migrate", "--noinput", "-v", "0"], PRODUCTION_ENV, tmp_path)
    assert result.returncode == 0, result.stderr
    code = ("import django; django.setup(); from django.core.cache import cache; cache.set('k', 'v'); "
            "print(cache.get('k'))")
    result = _run(["-c", code], PRODUCTION_ENV, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "v"


@pytest.mark.django_db
def test_pages_carry_a_content_security_policy_without_inline_script(client):
    response = client.get("/accounts/login/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    html = response.content.decode()
    for handler in ("onclick=", "onchange=", "onsubmit=", "<script>"):
        assert handler not in html
