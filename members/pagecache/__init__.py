"""Rendered learner pages served from a cache (issue 19).

A page is stored once rendered, per member (or "anonymous"), language, path with query string and htmx flags, under
the *pages version*: one key in the shared state cache (below) that every write to the catalogue, the members'
data or the community bumps, so a purchase, an edit, a new post or a notification shows on the next request, in
every worker. The versions (and the session markers below) live in
`state()`: CACHES["page_state"], Redis with REDIS_URL, a folder of files on SQLite, else the database cache. The
bodies live in the per-process `pages` cache (LocMem): a hit costs one state read and a dictionary look-up, not a
template render.

Two layers use these entries. `cached_page`, around the view, keys a page by member (the session and the user are
loaded first). `front.FrontPageCacheMiddleware`, before the session middleware, serves the same page again to the
same *session* without loading the session or the user: see members/pagecache/front.py for what it checks. Its
per-session marker is written with every session row write and deleted with every session row deletion (signals
below), so logging out, a flush, a new session key or an expired session stop its hits at once.

What bumps the version:
- any save or delete of a model of the members or community apps, or of a recommendation run (signals, below);
  a few models change only their member's pages (MEMBER_MODELS: lesson progress, quiz attempts, notifications, and
  API tokens, whose user config.api_auth keeps under these versions):
  those bump that member's own version, which the key also holds, so a learner watching lessons does not empty
  everyone's cache;
- any unsafe request (POST, PUT, PATCH, DELETE) that did not fail, since services also write with
  `QuerySet.update()`, which sends no signal (PAGE_CACHE_WRITE_EXEMPT lists the paths that never change a page,
  the event ingestion API; MEMBER_WRITE_PATHS those that change only the signed-in member's pages);
- and, for what time alone changes (a subscription's paid period running out), the bodies expire after
  CACHES["pages"]["TIMEOUT"] seconds.

Per-user parts stay correct: the key holds the member's id (their name, unread count, owned courses and tier are in
the page), their time zone and staff flag; the CSRF token is taken out of the stored body and the requesting user's
own token is put back on each hit; a request with messages to show is never served from or stored in the cache.
"""
from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CSRF_ALLOWED_CHARS, CSRF_SECRET_LENGTH, _unmask_cipher_token
from django.utils import timezone, translation

VERSION_KEY = "pages:version"
PLACEHOLDER = "__PAGE_CACHE_CSRF_TOKEN__"
# Apps whose writes can change a learner page, and single models of other apps that do.
WRITE_APPS = frozenset({"members", "community"})
WRITE_MODELS = frozenset({"analytics.recommendationrun", "analytics.recommendationset"})
# Models whose writes change only one member's pages, and the field naming that member.
MEMBER_MODELS = {"members.lessonprogress": "member_id", "members.quizattempt": "member_id",
                 "community.notification": "recipient_id",
                 # API tokens: their user is cached under the member's version (config.api_auth).
                 "authtoken.token": "user_id"}
# Write requests that change only the signed-in member's pages (the player's position, a lesson marked done, a quiz,
# notifications read). Completing a course saves its enrollment, which still bumps every page.
MEMBER_WRITE_PATHS = re.compile(
    r"^/(courses/[^/]+/lessons/\d+/(position|complete|quiz)/|api/v1/me/lessons/\d+/(position|view|complete)/"
    r"|community/notifications/)"
)
_CSRF_INDEX = {char: n for n, char in enumerate(CSRF_ALLOWED_CHARS)}
_TOKEN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z0-9]{64}(?![A-Za-z0-9])")


def store():  # noqa: ANN201 - a Django cache backend
    return caches["pages"]


MEMBER_VERSION_PREFIX = "pages:version:member:"


def _member_key(member_id: object) -> str:
    return f"{MEMBER_VERSION_PREFIX}{member_id}"


def state():  # noqa: ANN201 - a Django cache backend
    """Where the versions and the session markers live: CACHES["page_state"] (every process of the site shares it:
    Redis with REDIS_URL, a folder of files on the one SQLite host, else the database cache; config/settings.py), or
    the `default` cache when CACHES leaves it out (a deployment's own CACHES, tests of the database-cache case)."""
    return caches["page_state"] if "page_state" in settings.CACHES else cache


def state_values(member_id: object = None, also: Sequence[str] = ()) -> tuple[dict[str, str], dict[str, Any]]:
    """The current pages version and the member's own when given, by key, and the shared-state values of the keys in
    `also` (None when absent), in one shared-cache read."""
    keys = [VERSION_KEY] + ([_member_key(member_id)] if member_id is not None else [])
    values = state().get_many(keys + [key for key in also if key not in keys])
    if VERSION_KEY not in values:
        state().add(VERSION_KEY, uuid.uuid4().hex, None)
        values[VERSION_KEY] = state().get(VERSION_KEY) or ""
    return {key: values.get(key, "0") for key in keys}, {key: values.get(key) for key in also}


def version_values(member_id: object = None) -> dict[str, str]:
    """The current pages version, and the member's own when given, by key (one shared-cache read)."""
    return state_values(member_id)[0]


def version(member_id: object = None) -> str:
    """The current pages version, and the member's own when given (one shared-cache read)."""
    return ":".join(version_values(member_id).values())


def bump(member_id: object = None) -> None:
    """Cached pages are stale from now on, in every process: every page, or only the given member's."""
    state().set(_member_key(member_id) if member_id is not None else VERSION_KEY, uuid.uuid4().hex, None)


def session_marker_key(session_key: str) -> str:
    return "pages:session:" + hashlib.sha256(session_key.encode()).hexdigest()


def _on_session_saved(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A session row written (login, password change, a message stored, any change): a new marker, living exactly as
    long as the row does, so front-cache entries made before the write (members.pagecache.front) are stale."""
    seconds = (instance.expire_date - timezone.now()).total_seconds()
    if seconds > 0:
        state().set(session_marker_key(instance.session_key), uuid.uuid4().hex, seconds)
    else:
        state().delete(session_marker_key(instance.session_key))


def _on_session_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A session row deleted (logout, flush, cycle_key on login or password change, the admin, clearsessions): the
    front cache stops serving its cookie at once."""
    state().delete(session_marker_key(instance.session_key))


def _on_write(sender: Any, instance: Any = None, **kwargs: Any) -> None:
    meta = getattr(sender, "_meta", None)
    if meta is None:
        return
    if meta.label_lower == "members.user" and set(kwargs.get("update_fields") or ()) == {"last_login"}:
        return  # a login: no page shows when a member last logged in
    member_field = MEMBER_MODELS.get(meta.label_lower)
    if member_field is not None and kwargs.get("signal") is not m2m_changed:
        bump(getattr(instance, member_field, None))
    elif meta.app_label in WRITE_APPS or meta.label_lower in WRITE_MODELS:
        bump()


def connect_signals() -> None:
    from django.contrib.sessions.models import Session

    for signal in (post_save, post_delete, m2m_changed):
        signal.connect(_on_write, dispatch_uid=f"pagecache-{id(signal)}")
    post_save.connect(_on_session_saved, sender=Session, dispatch_uid="pagecache-session-saved")
    post_delete.connect(_on_session_deleted, sender=Session, dispatch_uid="pagecache-session-deleted")


class BumpOnWriteMiddleware:
    """After an unsafe request that did not fail, bump the pages version (covers `QuerySet.update()` writes)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (request.method not in ("GET", "HEAD", "OPTIONS", "TRACE") and response.status_code < 500
                and not request.path_info.startswith(tuple(getattr(settings, "PAGE_CACHE_WRITE_EXEMPT", ())))):
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated and MEMBER_WRITE_PATHS.match(request.path_info):
                bump(user.pk)
            else:
                bump()
        return response


def _has_messages(request: HttpRequest) -> bool:
    return "messages" in request.COOKIES or "_messages" in getattr(request, "session", {})


def page_key(request: HttpRequest, *, vary: str = "", also: Sequence[str] = ()) -> str:
    """The page's cache key under the current versions. The shared-state values of the keys in `also` come with the
    versions' read (no second read) and are left in `request.page_state_also`."""
    user = request.user
    who = f"u{user.pk}:{int(user.is_staff)}:{user.time_zone}" if user.is_authenticated else "anon"
    member_id = user.pk if user.is_authenticated else None
    htmx = f"{request.headers.get('HX-Request', '')}:{request.headers.get('HX-History-Restore-Request', '')}"
    versions = getattr(request, "api_token_versions", None)  # read by the token authentication (config.api_auth)
    if versions is None or also or _member_key(member_id) not in versions:
        versions, request.page_state_also = state_values(member_id, also)  # type: ignore[attr-defined]
    request.page_cache_versions = versions  # type: ignore[attr-defined] - what the front cache checks on its hits
    raw = "|".join((request.get_host(), request.get_full_path(), htmx, translation.get_language() or "", who, vary,
                    ":".join(versions.values())))
    return "page:" + hashlib.sha256(raw.encode()).hexdigest()


def _strip_token(body: str, request: HttpRequest) -> str:
    secret = request.META.get("CSRF_COOKIE")
    if not secret or PLACEHOLDER in body:
        return body

    def swap(match: re.Match[str]) -> str:
        return PLACEHOLDER if _unmask_cipher_token(match.group(0)) == secret else match.group(0)

    return _TOKEN.sub(swap, body)


def freeze(response: HttpResponse, request: HttpRequest) -> dict[str, Any] | None:
    """What to store of a rendered response, or None when it must not be stored."""
    if response.status_code != 200 or response.streaming or response.cookies or _has_messages(request):
        return None
    charset = response.charset or "utf-8"
    body = _strip_token(response.content.decode(charset), request)
    headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "set-cookie")}
    return {"body": body, "headers": headers, "charset": charset}


def _random_chars() -> list[int]:
    """32 indexes into CSRF_ALLOWED_CHARS from one `os.urandom` call (Django's `get_random_string` makes one call
    per character: a fifth of a cached page's time). Bytes of 248 and above are dropped, 248 being 4 × 62, so each
    of the 62 characters stays equally likely."""
    drawn: list[int] = []
    while len(drawn) < CSRF_SECRET_LENGTH:
        drawn.extend(byte % len(CSRF_ALLOWED_CHARS) for byte in os.urandom(48) if byte < 248)
    return drawn[:CSRF_SECRET_LENGTH]


def fresh_token(request: HttpRequest) -> str:
    """What `django.middleware.csrf.get_token` returns and does: the requester's CSRF secret (a new one when they
    have none) under a new random mask, their cookie flagged to be set or renewed by the CSRF middleware."""
    chars = CSRF_ALLOWED_CHARS
    secret = request.META.get("CSRF_COOKIE")
    if not secret:
        secret = "".join(chars[n] for n in _random_chars())
        request.META["CSRF_COOKIE"] = secret
    request.META["CSRF_COOKIE_NEEDS_UPDATE"] = True
    mask = _random_chars()
    return "".join(chars[m] for m in mask) + "".join(
        chars[(_CSRF_INDEX[c] + m) % len(chars)] for c, m in zip(secret, mask, strict=True))


def thaw(stored: dict[str, Any], request: HttpRequest) -> HttpResponse:
    body = stored["body"]
    if PLACEHOLDER in body:
        body = body.replace(PLACEHOLDER, fresh_token(request))
    response = HttpResponse(body.encode(stored["charset"]))
    for header, value in stored["headers"].items():
        response[header] = value
    return response


def cached_api_data(request: HttpRequest, produce: Callable[[], Any]) -> Any:
    """An API GET's serialized data from the pages cache (per member or anonymous, query string, language); on a
    miss, `produce()` answers and its data is stored. The renderer still runs, so JSON and the browsable API share
    the entry."""
    from rest_framework.response import Response

    key = "api:" + page_key(request)
    data = store().get(key)
    if data is not None:
        _offer_to_front(request)
        return Response(data)
    response = produce()
    if response.status_code == 200 and not getattr(response, "exception", False):
        store().set(key, response.data)
        _offer_to_front(request)
    return response


def _offer_to_front(request: Any) -> None:
    """Let the front of the page cache (front.py) keep this API answer, once rendered, for the same credentials —
    only when what it must check on a hit is known: for a token, the versions the token's user was trusted under
    (read *before* the token row, config.api_auth); for a visitor, the pages version read before the data. The
    view's throttles go with it: a hit counts them exactly as DRF would."""
    http = getattr(request, "_request", None)
    view = (getattr(request, "parser_context", None) or {}).get("view")
    if http is None or view is None:
        return
    user = request.user
    if user.is_authenticated:
        versions = getattr(request, "api_token_versions", None)  # set only by config.api_auth, from its trusted entry
        if versions is None:
            return
    else:
        versions = getattr(request, "page_cache_versions", None)
        if versions is None:
            return
    from rest_framework.throttling import SimpleRateThrottle

    from config.api_throttles import CountedThrottle

    # The rules front._throttles_allow applies: DRF's sliding log, and the same log in Redis.
    known = (SimpleRateThrottle.allow_request, CountedThrottle.allow_request)
    throttles = tuple(type(throttle) for throttle in view.get_throttles())
    if not all(issubclass(cls, SimpleRateThrottle) and cls.allow_request in known for cls in throttles):
        return  # a throttle with its own logic (a scope read from the view, say): only DRF runs it
    http.api_front = {"user_id": user.pk if user.is_authenticated else None, "state": dict(versions),
                      "throttles": throttles}


def cached_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Serve a GET page from the pages cache; render and store it on a miss."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "GET" or _has_messages(request):
            return view(request, *args, **kwargs)
        key = page_key(request)
        stored = store().get(key)
        if stored is not None:
            response = thaw(stored, request)
            response.page_cache_entry = stored  # type: ignore[attr-defined] - for the front cache (front.py)
            return response
        response = view(request, *args, **kwargs)
        frozen = freeze(response, request)
        if frozen is not None:
            store().set(key, frozen)
            response.page_cache_entry = frozen  # type: ignore[attr-defined]
        return response

    return wrapped
