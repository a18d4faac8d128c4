"""The common error body, throttling per user / per IP / for password checks, and the OpenAPI schema itself."""
from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from tests.api.conftest import assert_error

BASE_RATES = {"anon": "1000/minute", "user": "1000/minute", "events": "1000/minute"}


@pytest.fixture
def rates(monkeypatch):
    """Set throttle rates for one test (DRF reads them once at import), on a clean cache."""
    cache.clear()

    def set_rates(**overrides: str) -> None:
        monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**BASE_RATES, **overrides})

    yield set_rates
    cache.clear()


def test_validation_error_body_lists_fields(alice_api):
    error = assert_error(alice_api.post("/api/v1/me/membership/", {"period": "weekly"}, format="json"), 400, "invalid")
    assert set(error["fields"]) == {"tier", "period"}
    assert all(isinstance(m, str) for messages in error["fields"].values() for m in messages)


def test_domain_error_body_carries_the_service_code(alice_api, db):
    from tests.members.factories import CourseFactory

    CourseFactory(slug="sql")
    error = assert_error(alice_api.post("/api/v1/courses/sql/purchase/", {"coupon_code": "NOPE"}, format="json"),
                         400, "coupon_not_found")
    assert error["message"] == "There is no coupon with this code." and error["fields"] == {}


def test_unknown_url_under_api_and_wrong_method(alice_api):
    assert_error(alice_api.delete("/api/v1/courses/"), 405, "method_not_allowed")


def test_malformed_json_is_a_400_error_body(alice_api):
    response = alice_api.generic("POST", "/api/v1/me/quote/", "{not json", content_type="application/json")
    assert_error(response, 400)


def test_anonymous_is_throttled_per_ip(rates, db):
    rates(anon="2/minute")
    client = APIClient()
    for _ in range(2):
        assert client.get("/api/v1/tiers/").status_code == 200
    error = assert_error(client.get("/api/v1/tiers/"), 429, "throttled")
    assert int(error["fields"]["retry_after_seconds"][0]) > 0
    other_ip = client.get("/api/v1/tiers/", REMOTE_ADDR="10.0.0.9")
    assert other_ip.status_code == 200


def test_users_are_throttled_each_on_their_own(rates, alice_api, bob_api):
    rates(user="2/minute")
    for _ in range(2):
        assert alice_api.get("/api/v1/me/profile/").status_code == 200
    assert_error(alice_api.get("/api/v1/me/profile/"), 429, "throttled")
    assert bob_api.get("/api/v1/me/profile/").status_code == 200


def test_one_ip_shares_a_budget_across_accounts(rates, alice_api, bob_api):
    rates(ip="3/minute")
    for client in (alice_api, bob_api, alice_api):
        assert client.get("/api/v1/me/profile/").status_code == 200
    assert_error(bob_api.get("/api/v1/me/profile/"), 429, "throttled")


def test_password_checks_are_throttled_low(rates, anon_api, alice):
    rates(login="2/minute")
    for _ in range(2):
        anon_api.post("/api/v1/me/tokens/", {"email": "alice@example.com", "password": "guess"}, format="json")
    response = anon_api.post("/api/v1/me/tokens/", {"email": "alice@example.com", "password": "pw-for-tests-123"},
                             format="json")
    assert_error(response, 429, "throttled")


def test_schema_swagger_and_redoc_are_served_from_local_assets(client, db):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/v1/events/batch/" in schema.content
    for url in ("/api/docs/", "/api/redoc/"):
        page = client.get(url)
        assert page.status_code == 200
        html = page.content.decode()
        assert "drf_spectacular_sidecar" in html or "/static/" in html
        assert "cdn.jsdelivr" not in html and "unpkg.com" not in html


def test_every_operation_documents_responses_and_examples():
    """Each endpoint has a documented success response with a schema, and at least one example."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    missing = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            success = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
            has_example = any(
                "examples" in media for response in operation["responses"].values()
                for media in response.get("content", {}).values()
            )
            if not success or not has_example:
                missing.append(f"{method.upper()} {path}")
    assert missing == []


def test_schema_generates_without_warnings(tmp_path):
    from django.core.management import call_command
    from django.utils import translation

    # English, as the schema is published: enum names are keyed on choice labels, which other tests may have left
    # translated.
    with translation.override("en"):
        call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert (tmp_path / "schema.yaml").stat().st_size > 10_000


def test_behind_a_proxy_clients_are_told_apart_by_forwarded_for(rates, db, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    rates(anon="1/minute")
    client = APIClient()
    proxy = {"REMOTE_ADDR": "10.0.0.1"}
    assert client.get("/api/v1/tiers/", HTTP_X_FORWARDED_FOR="203.0.113.5", **proxy).status_code == 200
    assert client.get("/api/v1/tiers/", HTTP_X_FORWARDED_FOR="203.0.113.6", **proxy).status_code == 200
    assert client.get("/api/v1/tiers/", HTTP_X_FORWARDED_FOR="203.0.113.6", **proxy).status_code == 429
