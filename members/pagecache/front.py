"""The front of the page cache: a signed-in learner's cached page answered before the session, the user, CSRF, locale,
messages, axes and htmx middlewares run (issue 19), so a hit reads no database row.

Placed in MIDDLEWARE right after the probe, security, CSP, static-file and input-checking middlewares. An entry is
made only on the way out of a request the whole stack served with a page from `cached_page` (members.pagecache), or
the recommendations row while its impressions marker holds (analytics/recommendations/impressions.py: the marker is
one more state key the entry must find unchanged, so the row goes back through the stack when its window ends), and
it is keyed by everything that chose that page before the view ran: the scheme, host, path with query string, the
htmx headers, the language cookie and Accept-Language, and the *session cookie's value* (hashed). So only the
session the page was rendered for is ever served it: a different member, a staff member, another browser of the
same member or a visitor without a cookie each have their own entries.

An entry is served only while, in the shared state cache (`members.pagecache.state()`, one read):
- the pages version and the member's own version are those the page was rendered under (any write bumps them, as
  for the cache behind the view: a purchase, a deactivated account, a password or staff-flag change, a new post);
- the session's *marker* is the one it was rendered under. The marker is written whenever the session row is
  written, with the row's own expiry, and deleted whenever the row is deleted: logging out, a flush, `cycle_key`
  (login, password change), the admin or `clearsessions`. So a cookie stops being served cached pages at the moment
  its session ends or expires server-side, and a session that stores a message to show gets new markers.

What a hit still does as the full stack would: the CSRF token in the page is the requester's own (CSRF middleware's
`process_request` reads their cookie, the stored page's placeholder gets a fresh mask of it, `process_response`
renews the cookie); the stored headers are those the inner middlewares produced (Vary, Content-Language,
X-Frame-Options…) and the outer ones (security headers, CSP, request id) run on the hit as on any response. A
request with a message cookie, a non-GET request, or a response that set any cookie but the CSRF one, is never
served from or stored in the front cache.

The page-cached API lists (`members.pagecache.cached_api_data`) are kept here too, as rendered JSON, for requests
without a session cookie: per `Authorization` and `Accept` header as well, under the versions the token's user was
trusted under (config.api_auth) or, for a visitor, the pages version read before the data. A hit runs the view's
throttles as DRF would (`_throttles_allow`) and skips the rest of the stack; see docs/OPERATIONS.md.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware

from config.api_throttles import CountedThrottle, redis_sliding_log
from members import pagecache


def _front_key(request: HttpRequest) -> str:
    headers = request.headers
    raw = "|".join((
        request.scheme, request.get_host(), request.get_full_path(),
        headers.get("HX-Request", ""), headers.get("HX-History-Restore-Request", ""),
        request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME, ""), headers.get("Accept-Language", ""),
        request.COOKIES.get(settings.SESSION_COOKIE_NAME, ""),
        # An API answer: whose credentials, and which renderer DRF's content negotiation picked.
        headers.get("Authorization", ""), headers.get("Accept", ""),
    ))
    return "front:" + hashlib.sha256(raw.encode()).hexdigest()


class FrontPageCacheMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        # Only its process_request and process_response, the same code the CSRF middleware runs further in.
        self.csrf = CsrfViewMiddleware(get_response)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method != "GET" or "messages" in request.COOKIES or settings.CSRF_USE_SESSIONS:
            return self.get_response(request)
        try:
            key = _front_key(request)
        except DisallowedHost:
            key = ""
        if not key:
            return self.get_response(request)  # an unknown host: the stack refuses it as usual, logged once
        entry = pagecache.store().get(key)
        if entry is not None and "api" in entry:
            verdict = _api_verdict(entry, request)
            if verdict is True:
                return _api_response(entry)
            if verdict is False:
                return self.get_response(request)  # over a rate: the stack counts and answers 429 as DRF does
        elif entry is not None and _current(entry):
            return self._serve(entry, request)
        response = self.get_response(request)
        self._remember(key, request, response)
        return response

    def _serve(self, entry: dict[str, Any], request: HttpRequest) -> HttpResponse:
        self.csrf.process_request(request)
        response = pagecache.thaw(entry, request)
        response["Content-Length"] = str(len(response.content))
        return self.csrf.process_response(request, response)

    @staticmethod
    def _remember(key: str, request: HttpRequest, response: HttpResponse) -> None:
        api = getattr(request, "api_front", None)
        if api is not None:
            _remember_api(key, api, request, response)
            return
        stored = getattr(response, "page_cache_entry", None)
        versions = getattr(request, "page_cache_versions", None)
        if (stored is None or versions is None or response.status_code != 200 or response.streaming
                or set(response.cookies) - {settings.CSRF_COOKIE_NAME}):
            return
        session_key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        user = request.user
        expected = dict(versions)
        if session_key:
            session = request.session
            # The page was rendered for this very session (not one cycled during the request) and a signed-in member.
            if not user.is_authenticated or session.session_key != session_key or session.modified:
                return
            marker_key = pagecache.session_marker_key(session_key)
            marker = pagecache.state().get(marker_key)
            if marker is None:
                return
            expected[marker_key] = marker
        elif user.is_authenticated:
            return
        headers = {name: value for name, value in response.headers.items()
                   if name.lower() not in ("content-length", "set-cookie")}
        pagecache.store().set(key, {"body": stored["body"], "charset": stored["charset"], "headers": headers,
                                    "state": expected})


# --------------------------------------------------------------------------------------------------------------
# API lists (members.pagecache.cached_api_data): the rendered JSON for the same token (or a visitor), with the view's
# throttles counted on every hit.

def _missing_matches(state_key: str, value: str) -> bool:
    """A member's version is "0" until first bumped (members.pagecache.state_values): a missing key matches "0"."""
    return state_key.startswith(pagecache.MEMBER_VERSION_PREFIX) and value == "0"


def _current(entry: dict[str, Any]) -> bool:
    expected: dict[str, str] = entry["state"]
    values = pagecache.state().get_many(list(expected))
    for state_key, value in expected.items():
        default = "0" if _missing_matches(state_key, value) else None
        if values.get(state_key, default) != value:
            return False
    return True


def _remember_api(key: str, api: dict[str, Any], request: HttpRequest, response: HttpResponse) -> None:
    """Keep a page-cached API answer for requests without a session cookie (a token, or a visitor): the session's
    authentication comes first in DRF and the front does not load sessions. JSON only (the browsable API's HTML
    carries a CSRF token and the user's name)."""
    if (request.COOKIES.get(settings.SESSION_COOKIE_NAME) or response.status_code != 200 or response.streaming
            or response.cookies or not response.get("Content-Type", "").startswith("application/json")):
        return
    headers = {name: value for name, value in response.headers.items()
               if name.lower() not in ("content-length", "set-cookie")}
    pagecache.store().set(key, {"body": response.content, "headers": headers, "state": api["state"],
                                "api": {"user_id": api["user_id"], "throttles": api["throttles"]}})


class _Member:
    """What DRF's throttles read of `request.user`: whether it is signed in, and its primary key."""

    is_authenticated = True

    def __init__(self, pk: object) -> None:
        self.pk = pk


class _ThrottledRequest:
    """The request as DRF's throttles see it: its own headers and address, and the user the entry was made for."""

    def __init__(self, user: object, request: HttpRequest) -> None:
        self.user = user
        self._request = request

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)


def _redis_counted(throttle: Any) -> bool:
    return isinstance(throttle, CountedThrottle) and isinstance(throttle.cache, RedisCache)


def _api_verdict(entry: dict[str, Any], request: HttpRequest) -> bool | None:
    """An API entry at the front: None when it is stale (nothing counted: the stack answers and counts), True when
    current and every throttle lets the request through (recorded by all), False when current and one refuses
    (recorded by none: the stack counts and refuses it as DRF does). With the shared state and the throttle logs on
    one Redis server, the state check and the throttles are one script, one round trip."""
    throttles = _active_throttles(entry["api"], request)
    if throttles is None:
        return None  # throttles the front cannot count as the stack would: the stack runs them
    state_cache = pagecache.state()
    # _active_throttles leaves Redis logs only alone and in one cache: the first throttle tells for all.
    if throttles and _redis_counted(throttles[0]) and _same_redis(state_cache, throttles[0].cache):
        serializer = state_cache._cache._serializer
        state = [(state_cache.make_and_validate_key(key), serializer.dumps(value), _missing_matches(key, value))
                 for key, value in entry["state"].items()]
        return redis_sliding_log(throttles, state)
    if not _current(entry):
        return None
    return _throttles_allow(throttles)


def _same_redis(one: Any, other: Any) -> bool:
    return (isinstance(one, RedisCache) and isinstance(other, RedisCache)
            and one._cache._servers[:1] == other._cache._servers[:1])


def _active_throttles(api: dict[str, Any], request: HttpRequest) -> list[Any] | None:
    """The entry's throttles that count this request (a rate set, a key for it), each with its key set; None when
    the front cannot count them as the stack would (two under one key; logs in Redis mixed with other counts)."""
    from django.contrib.auth.models import AnonymousUser

    user = _Member(api["user_id"]) if api["user_id"] is not None else AnonymousUser()
    shim = _ThrottledRequest(user, request)
    active = []
    for throttle_class in api["throttles"]:
        throttle = throttle_class()
        if throttle.rate is None:
            continue
        throttle.key = throttle.get_cache_key(shim, None)
        if throttle.key is not None:
            active.append(throttle)
    if len({(id(throttle.cache), throttle.key) for throttle in active}) < len(active):
        return None  # two throttles counting under one key: DRF's one-after-the-other reads, in the stack
    redis = [throttle for throttle in active if _redis_counted(throttle)]
    if redis and (len(redis) < len(active) or len({id(throttle.cache) for throttle in redis}) > 1):
        return None  # logs in Redis mixed with other counts: only the stack counts those, one by one
    return active


def _throttles_allow(active: list[Any]) -> bool:
    """DRF's `check_throttles` for a front hit: every throttle of the view, each with DRF's own rate, key, history
    and pruning (SimpleRateThrottle.allow_request, split in two). A request is recorded by every throttle only when
    all allow it; when one refuses, nothing is recorded here and the request goes through the stack, whose DRF counts
    and refuses it exactly as it would have without the front. The histories are read with one `get_many` and
    written with one `set_many` per cache (and duration); logs kept in Redis (config.api_throttles) are checked and
    written by one script, one round trip."""
    if active and _redis_counted(active[0]):  # then all are, in one cache (_active_throttles)
        return bool(redis_sliding_log(active))  # all or none
    by_cache: dict[int, tuple[Any, list[Any]]] = {}
    for throttle in active:
        by_cache.setdefault(id(throttle.cache), (throttle.cache, []))[1].append(throttle)
    for cache, throttles in by_cache.values():
        histories = cache.get_many([throttle.key for throttle in throttles])
        for throttle in throttles:
            throttle.history = histories.get(throttle.key, [])
            throttle.now = throttle.timer()
            while throttle.history and throttle.history[-1] <= throttle.now - throttle.duration:
                throttle.history.pop()
            if len(throttle.history) >= throttle.num_requests:
                return False
    for cache, throttles in by_cache.values():
        by_duration: dict[int, dict[str, list[float]]] = {}
        for throttle in throttles:
            throttle.history.insert(0, throttle.now)  # SimpleRateThrottle.throttle_success, written below
            by_duration.setdefault(throttle.duration, {})[throttle.key] = throttle.history
        for duration, histories in by_duration.items():
            cache.set_many(histories, duration)
    return True


def _api_response(entry: dict[str, Any]) -> HttpResponse:
    response = HttpResponse(entry["body"])
    for header, value in entry["headers"].items():
        response[header] = value
    response["Content-Length"] = str(len(entry["body"]))
    return response
