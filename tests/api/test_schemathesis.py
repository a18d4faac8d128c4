"""Property-based run of the whole API against its own OpenAPI schema (schemathesis, in-process over WSGI).

Every operation gets a handful of generated requests as staff (charlie, token auth), and two checks: no 5xx, and
every documented response matches its schema. Small example counts keep the run well under two minutes; the point
is breadth (every endpoint, odd inputs), not depth.
"""
from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from config.wsgi import application
from tests.members.factories import (
    CourseFactory,
    LessonFactory,
    StaffFactory,
    TierFactory,
    UserFactory,
)

STAFF_TOKEN = "0123456789abcdef0123456789abcdef01234567"


# Loaded once at collection: generating the schema needs no database.
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def keep_db_connection():
    """Schemathesis calls the WSGI app directly, so Django's request_finished handler would close the database
    connection after each request — on PostgreSQL that ends the test's transaction. Django's own test client
    disconnects the handler the same way."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def staff_token(db, keep_db_connection):
    staff = StaffFactory(email="charlie@example.com")
    Token.objects.create(user=staff, key=STAFF_TOKEN)
    # A little catalogue so detail endpoints sometimes find something.
    course = CourseFactory(slug="sql")
    LessonFactory(course=course, position=1)
    TierFactory(slug="plus")
    return staff


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=10, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_api_conforms_to_its_schema(case, staff_token):
    # DELETE /me/tokens/ revokes the staff token mid-run; put it back so later cases stay authenticated.
    Token.objects.get_or_create(user=staff_token, defaults={"key": STAFF_TOKEN})
    case.call_and_validate(
        headers={"Authorization": f"Token {STAFF_TOKEN}"},
        checks=[not_a_server_error, response_schema_conformance],
    )


# ---------------------------------------------------------------------------------------------------- hostile
# Issue 13.10: the same schema, generated to break it — negative mode (values that violate the schema: wrong types,
# out-of-range numbers, missing fields) with NUL characters allowed — as a plain member. The only check: no 5xx.
hostile_schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
hostile_schema.config.generation.update(modes=[GenerationMode.NEGATIVE, GenerationMode.POSITIVE], allow_x00=True)
MEMBER_TOKEN = "fedcba9876543210fedcba9876543210fedcba98"


@pytest.fixture
def member_token(db, keep_db_connection):
    member = UserFactory(email="alice@example.com")
    Token.objects.create(user=member, key=MEMBER_TOKEN)
    course = CourseFactory(slug="sql")
    LessonFactory(course=course, position=1)
    TierFactory(slug="plus")
    return member


@pytest.mark.slow
@pytest.mark.adversarial
@hostile_schema.parametrize()
@settings(max_examples=8, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_api_answers_hostile_input_without_a_server_error(case, member_token):
    Token.objects.get_or_create(user=member_token, defaults={"key": MEMBER_TOKEN})
    case.call_and_validate(headers={"Authorization": f"Token {MEMBER_TOKEN}"}, checks=[not_a_server_error])


WRITE_OPERATIONS = [
    (operation.method.upper(), operation.path)
    for operation in (result.ok() for result in schema.get_all_operations())
    if operation.method.upper() in ("POST", "PUT", "PATCH")
]


@pytest.mark.adversarial
@pytest.mark.parametrize(("method", "path"), WRITE_OPERATIONS, ids=[f"{m} {p}" for m, p in WRITE_OPERATIONS])
def test_every_write_endpoint_refuses_deeply_nested_json(staff_token, method, path):
    """A body nested 100,000 levels deep on every POST/PUT/PATCH of the schema: never RecursionError. Before
    config.parsers: a 500 on each that parses its body."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {STAFF_TOKEN}")
    url = path.replace("{id}", "1").replace("{slug}", "sql")
    depth = 100_000
    body = '{"a": ' + "[" * depth + "]" * depth + "}"
    response = client.generic(method, url, body, content_type="application/json")
    # 200: an endpoint that never reads its body (read-all) is fine; anything that parses it must answer 400.
    assert response.status_code in (200, 400, 403, 404, 405), (url, response.status_code, response.content[:200])
