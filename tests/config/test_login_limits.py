"""Login limits (issue 13 item 7): the HTML and admin logins lock after repeated failures (django-axes, counted in
the database so every process sees them); rotating X-Forwarded-For buys no fresh budget unless a trusted proxy is
declared; the API token endpoint is throttled per client IP the same way."""
from __future__ import annotations

import pytest
from django.test import override_settings
from rest_framework.authtoken.models import Token

from config.api_throttles import LoginRateThrottle
from tests.members.factories import StaffFactory, UserFactory

pytestmark = [pytest.mark.adversarial, pytest.mark.django_db]
PASSWORD = "correct-horse-battery-1"


def _fail(client, url: str, email: str, n: int) -> list[int]:
    return [client.post(url, {"username": email, "password": "wrong"}).status_code for _ in range(n)]


@override_settings(AXES_FAILURE_LIMIT=3)
def test_html_login_locks_after_repeated_failures_even_with_the_right_password(client):
    user = UserFactory(email="alice@example.com")
    user.set_password(PASSWORD)
    user.save()
    assert _fail(client, "/accounts/login/", "alice@example.com", 3) == [200, 200, 429]  # the third failure locks
    response = client.post("/accounts/login/", {"username": "alice@example.com", "password": PASSWORD})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


@override_settings(AXES_FAILURE_LIMIT=3)
def test_admin_login_locks_too(client):
    staff = StaffFactory(email="charlie@example.com", is_superuser=True)
    staff.set_password(PASSWORD)
    staff.save()
    assert _fail(client, "/admin/login/", "charlie@example.com", 3) == [200, 200, 429]
    response = client.post("/admin/login/", {"username": "charlie@example.com", "password": PASSWORD})
    assert response.status_code == 429


@override_settings(AXES_FAILURE_LIMIT=3)
def test_rotating_x_forwarded_for_does_not_reset_the_count(client):
    # Different account names each time, so only the per-IP count can stop it: the peer address is the client.
    for i in range(3):
        client.post("/accounts/login/", {"username": f"guess{i}@example.com", "password": "x"},
                    HTTP_X_FORWARDED_FOR=f"198.51.100.{i}")
    response = client.post("/accounts/login/", {"username": "other@example.com", "password": "x"},
                           HTTP_X_FORWARDED_FOR="192.0.2.77")
    assert response.status_code == 429


@override_settings(AXES_FAILURE_LIMIT=3)
def test_a_successful_login_below_the_limit_still_works(client):
    user = UserFactory(email="bob@example.com")
    user.set_password(PASSWORD)
    user.save()
    assert _fail(client, "/accounts/login/", "bob@example.com", 2) == [200, 200]
    response = client.post("/accounts/login/", {"username": "bob@example.com", "password": PASSWORD})
    assert response.status_code == 302


def test_api_token_throttle_ignores_a_rotating_x_forwarded_for(client, monkeypatch):
    monkeypatch.setattr(LoginRateThrottle, "THROTTLE_RATES", {"login": "3/minute"})
    codes = [
        client.post("/api/v1/me/tokens/", {"email": "nobody@example.com", "password": "x"},
                    content_type="application/json", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").status_code
        for i in range(5)
    ]
    assert codes[:3] != [429, 429, 429] and codes[3:] == [429, 429]


def test_api_token_failures_count_towards_the_login_lock(client):
    user = UserFactory(email="dora@example.com")
    user.set_password(PASSWORD)
    user.save()
    with override_settings(AXES_FAILURE_LIMIT=2):
        codes = [client.post("/api/v1/me/tokens/", {"email": "dora@example.com", "password": "x"},
                             content_type="application/json").status_code for _ in range(2)]
        assert codes[0] in (401, 403) and codes[1] == 429
        r = client.post("/api/v1/me/tokens/", {"email": "dora@example.com", "password": PASSWORD},
                        content_type="application/json")
        assert r.status_code == 429 and not Token.objects.filter(user=user).exists()
