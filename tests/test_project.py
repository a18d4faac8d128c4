from __future__ import annotations

from io import StringIO

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from config.env import database_from_url, env_bool


def test_manage_py_check_is_clean():
    call_command("check", "--fail-level", "WARNING", stdout=StringIO())


@pytest.mark.django_db
def test_migrations_match_the_models():
    call_command("makemigrations", "--check", "--dry-run", stdout=StringIO())


def test_a_malformed_database_url_fails_with_a_clear_message(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="unsupported scheme"):
        database_from_url("mysql://x@y/z", base_dir=tmp_path)
    with pytest.raises(ImproperlyConfigured, match="names no database"):
        database_from_url("postgres://u@h:5432/", base_dir=tmp_path)


def test_postgres_url_is_parsed(tmp_path):
    db = database_from_url("postgres://postgres:p%40ss@127.0.0.1:5432/retention", base_dir=tmp_path)
    assert (db["ENGINE"], db["NAME"], db["PASSWORD"], db["PORT"]) == (
        "django.db.backends.postgresql", "retention", "p@ss", "5432"
    )


def test_a_malformed_boolean_fails(monkeypatch):
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG"):
        env_bool("X_FLAG")
