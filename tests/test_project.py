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


@pytest.mark.django_db
def test_a_missing_page_gets_the_site_404(client, settings):
    settings.DEBUG = False
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Page not found" in body and 'href="/courses/' in body


def test_the_500_page_renders_without_a_request_context(rf):
    from django.utils import translation
    from django.views.defaults import server_error

    with translation.override("en"):
        response = server_error(rf.get("/"))
    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()
