"""Shared fixtures. The cast follows healthchecks' hc/test.py: alice (owner), bob (another member), charlie (staff)."""
from __future__ import annotations

import pytest

from tests.members.factories import StaffFactory, UserFactory


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from django.conf import settings

    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL (runs in the PostgreSQL tier)")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip_pg)


@pytest.fixture
def alice(db):
    return UserFactory(email="alice@example.com", display_name="Alice")


@pytest.fixture
def bob(db):
    return UserFactory(email="bob@example.com", display_name="Bob")


@pytest.fixture
def charlie(db):
    return StaffFactory(email="charlie@example.com", display_name="Charlie")


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def staff_client(client, charlie):
    client.force_login(charlie)
    return client


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Reports cache their figures; a figure cached by one test's database must never leak into another's."""
    from django.core.cache import cache, caches

    cache.clear()
    caches["pages"].clear()
    caches["page_state"].clear()
    yield
    cache.clear()
    caches["pages"].clear()
    caches["page_state"].clear()


@pytest.fixture(autouse=True)
def _default_language():
    """A request through LocaleMiddleware leaves its language active in the thread (Django does not reset it): a test
    that requested a Chinese page must not make the next test's English assertions read Chinese."""
    from django.conf import settings
    from django.utils import translation

    yield
    translation.activate(settings.LANGUAGE_CODE)
