"""API fixtures: one APIClient per role of the cast (anonymous, alice, bob, charlie), authenticated by token."""
from __future__ import annotations

from collections.abc import Callable

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


def _client_for(user: object | None) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def api_for(alice, bob, charlie) -> Callable[[str], APIClient]:
    """api_for("anonymous" | "alice" | "bob" | "charlie") → a client acting as that role."""
    users = {"anonymous": None, "alice": alice, "bob": bob, "charlie": charlie}
    return lambda role: _client_for(users[role])


@pytest.fixture
def anon_api() -> APIClient:
    return APIClient()


@pytest.fixture
def alice_api(alice) -> APIClient:
    return _client_for(alice)


@pytest.fixture
def bob_api(bob) -> APIClient:
    return _client_for(bob)


@pytest.fixture
def staff_api(charlie) -> APIClient:
    return _client_for(charlie)


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The common error body: {"error": {"code", "message", "fields"}}."""
    assert response.status_code == status, (response.status_code, getattr(response, "data", response.content))
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]
