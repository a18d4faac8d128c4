"""The page cache's front (members.pagecache.front, issue 19): a signed-in learner's cached page answered before the
session and user are loaded, yet only to the session it was rendered for, and only while that session lives."""
from __future__ import annotations

import re
import time
from importlib import import_module

import pytest
from django.conf import settings
from django.contrib.messages import constants
from django.contrib.messages.storage.cookie import CookieStorage
from django.contrib.sessions.models import Session
from django.http import HttpResponse
from django.middleware.csrf import _unmask_cipher_token
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse

from members import pagecache
from tests.members.factories import CourseFactory

pytestmark = pytest.mark.django_db
TOKEN = re.compile(r'"X-CSRFToken": "([A-Za-z0-9]{64})"')
HOME = "/"


def _from_front(response) -> bool:
    """Answered by the front cache: no template rendered and the authentication middleware never ran."""
    return response.context is None and not hasattr(response.wsgi_request, "user")


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _warm(client: Client, path: str = HOME):
    miss = client.get(path)
    hit = client.get(path)
    assert miss.status_code == hit.status_code == 200
    assert not _from_front(miss) and _from_front(hit)
    return miss, hit


def _with_cookie(session_key: str) -> Client:
    """Someone holding (a copy of) a session cookie."""
    thief = Client()
    thief.cookies[settings.SESSION_COOKIE_NAME] = session_key
    return thief


def test_a_hit_costs_no_query_and_shows_the_members_own_page(alice, django_assert_num_queries):
    CourseFactory(title="Front course")
    client = _signed_in(alice)
    client.get(HOME)
    with django_assert_num_queries(0):
        hit = client.get(HOME)
    assert _from_front(hit) and "Alice" in hit.content.decode()


def test_the_csrf_token_of_a_hit_is_the_requesters_own(alice):
    client = _signed_in(alice)
    miss, hit = _warm(client)
    secret = client.cookies[settings.CSRF_COOKIE_NAME].value
    tokens = [TOKEN.search(r.content.decode()).group(1) for r in (miss, hit)]
    assert tokens[0] != tokens[1]  # a fresh mask per response
    assert all(_unmask_cipher_token(token) == secret for token in tokens)


@override_settings(SECURE_HSTS_SECONDS=3600, SECURE_HSTS_INCLUDE_SUBDOMAINS=True)
def test_a_hit_has_the_same_headers_and_cookies_as_a_rendered_page(alice):
    client = _signed_in(alice)
    miss = client.get(HOME, secure=True, HTTP_ACCEPT_LANGUAGE="en")
    hit = client.get(HOME, secure=True, HTTP_ACCEPT_LANGUAGE="en")
    assert not _from_front(miss) and _from_front(hit)

    def headers(response) -> dict[str, str]:
        return {name.lower(): value for name, value in response.headers.items() if name.lower() != "x-request-id"}

    assert headers(hit) == headers(miss)
    for name in ("content-security-policy", "strict-transport-security", "x-frame-options", "content-language",
                 "vary", "referrer-policy", "x-content-type-options"):
        assert name in headers(hit), name
    assert hit["X-Request-ID"] and hit["X-Request-ID"] != miss["X-Request-ID"]  # each response its own id
    assert int(hit["Content-Length"]) == len(hit.content)
    # The CSRF cookie renewed as the CSRF middleware renews it; no other cookie.
    assert set(hit.cookies) == set(miss.cookies) == {settings.CSRF_COOKIE_NAME}
    assert hit.cookies[settings.CSRF_COOKIE_NAME].value == miss.cookies[settings.CSRF_COOKIE_NAME].value
    assert {k: v for k, v in hit.cookies[settings.CSRF_COOKIE_NAME].items() if k != "expires"} == {
        k: v for k, v in miss.cookies[settings.CSRF_COOKIE_NAME].items() if k != "expires"}


def test_logging_out_stops_the_old_cookie_being_served_at_once(alice):
    client = _signed_in(alice)
    _warm(client)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert _from_front(_with_cookie(cookie).get(HOME))  # a copy of a live cookie sees what its owner sees
    assert client.post(reverse("logout")).status_code == 302
    after = _with_cookie(cookie).get(HOME)
    assert not _from_front(after) and after.wsgi_request.user.is_anonymous and "Alice" not in after.content.decode()


def test_a_flushed_or_cycled_session_is_not_served(alice):
    engine = import_module(settings.SESSION_ENGINE)
    for end in ("flush", "cycle_key"):
        client = _signed_in(alice)
        _warm(client)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        store = engine.SessionStore(session_key=cookie)
        store.load()
        getattr(store, end)()
        after = _with_cookie(cookie).get(HOME)
        assert not _from_front(after) and after.wsgi_request.user.is_anonymous, end


def test_sessions_deleted_in_bulk_are_not_served(alice):
    """The admin, clearsessions or a "sign out everywhere" delete session rows: each deletion removes its marker."""
    client = _signed_in(alice)
    _warm(client)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    Session.objects.filter(session_key=cookie).delete()
    after = _with_cookie(cookie).get(HOME)
    assert not _from_front(after) and after.wsgi_request.user.is_anonymous


def test_a_password_change_or_a_deactivated_account_stops_the_old_cookie_at_once(alice):
    for change in ("password", "deactivate"):
        client = _signed_in(alice)
        _warm(client)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        if change == "password":
            alice.set_password("a-new-password-123")
        else:
            alice.is_active = False
        alice.save()
        after = _with_cookie(cookie).get(HOME)
        assert not _from_front(after) and after.wsgi_request.user.is_anonymous, change
        alice.is_active = True
        alice.save()


def test_a_session_that_expired_server_side_is_not_served(alice, monkeypatch):
    client = _signed_in(alice)
    session = client.session
    session.set_expiry(30)  # the row now expires in 30 s; the marker with it
    session.save()
    _warm(client)
    later = time.time() + 31
    monkeypatch.setattr("django.core.cache.backends.locmem.time.time", lambda: later)
    after = client.get(HOME)
    assert not _from_front(after)


def test_the_marker_lives_exactly_as_long_as_the_session_row(alice):
    client = _signed_in(alice)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    marker = pagecache.session_marker_key(key)
    assert pagecache.state().get(marker) is not None
    row = Session.objects.get(session_key=key)
    expires_in = row.expire_date.timestamp() - time.time()
    # LocMem keeps each key's deadline; the marker's is the row's, to the second.
    deadline = pagecache.state()._expire_info[pagecache.state().make_and_validate_key(marker)]
    assert abs((deadline - time.time()) - expires_in) < 2


def test_a_message_to_show_is_never_served_from_the_front(alice):
    client = _signed_in(alice)
    _warm(client)
    # A message as the previous response left it: in the messages cookie (the session holds only the overflow, and
    # any session write gives the session a new marker, so its entries are stale).
    request = RequestFactory().get(HOME)
    storage = CookieStorage(request)
    storage.add(constants.INFO, "Saved!")
    carrier = HttpResponse()
    storage.update(carrier)
    client.cookies["messages"] = carrier.cookies["messages"].value
    shown = client.get(HOME)
    assert not _from_front(shown) and "Saved!" in shown.content.decode()
    del client.cookies["messages"]  # the message shown, the browser drops the cleared cookie (the test client does not)
    again = client.get(HOME)
    assert _from_front(again) and "Saved!" not in again.content.decode()


def test_members_staff_and_browsers_never_share_an_entry(alice, bob, charlie):
    alice_client, bob_client, staff_client = _signed_in(alice), _signed_in(bob), _signed_in(charlie)
    for client, name in ((alice_client, "Alice"), (bob_client, "Bob"), (staff_client, "Charlie")):
        miss, hit = _warm(client)
        assert name in hit.content.decode()
        for other in {"Alice", "Bob", "Charlie"} - {name}:
            assert other not in hit.content.decode()
    # The same member in a second browser: a session of its own, so a front miss first.
    second = _signed_in(alice)
    assert not _from_front(second.get(HOME))
    # No cookie at all: the anonymous page, never a member's.
    anonymous = Client().get(HOME)
    assert "Alice" not in anonymous.content.decode()


def test_a_cookie_unknown_to_the_server_is_never_served(alice):
    client = _signed_in(alice)
    _warm(client)
    forged = _with_cookie("x" * 32)
    response = forged.get(HOME)
    assert not _from_front(response) and response.wsgi_request.user.is_anonymous


def test_each_language_has_its_own_entry(alice):
    client = _signed_in(alice)
    _warm(client)
    chinese = client.get(HOME, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert not _from_front(chinese)  # another Accept-Language: another entry
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    switched = client.get(HOME)
    assert not _from_front(switched) and switched["Content-Language"] == "zh-hans"


def test_the_fast_csrf_token_is_what_django_would_accept():
    from django.middleware.csrf import CSRF_ALLOWED_CHARS, _check_token_format, _does_token_match

    request = RequestFactory().get(HOME)
    first = pagecache.fresh_token(request)  # no cookie yet: a new secret, to be set by the CSRF middleware
    secret = request.META["CSRF_COOKIE"]
    assert request.META["CSRF_COOKIE_NEEDS_UPDATE"] and len(secret) == 32
    seen = set()
    for _ in range(300):
        token = pagecache.fresh_token(request)
        _check_token_format(token)
        assert _unmask_cipher_token(token) == secret and _does_token_match(token, secret)
        seen.update(token)
    assert first != token and seen == set(CSRF_ALLOWED_CHARS)
