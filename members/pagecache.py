"""Rendered learner pages served from a cache (issue 19).

A page is stored once rendered, per member (or "anonymous"), language, path with query string and htmx flags, under
the *pages version*: one key in the shared cache (`default`: Redis in production, the database table embedded)
that every write to the catalogue, the members' data or the community bumps, so a purchase, an edit, a new post or
a notification shows on the next request, in every worker. The bodies live in the per-process `pages` cache
(LocMem): a hit costs one shared-cache read (the version) and a dictionary look-up, not a template render.

What bumps the version:
- any save or delete of a model of the members or community apps, or of a recommendation run (signals, below);
- any unsafe request (POST, PUT, PATCH, DELETE) that did not fail, since services also write with
  `QuerySet.update()`, which sends no signal (PAGE_CACHE_WRITE_EXEMPT lists the paths that never change a page,
  the event ingestion API);
- and, for what time alone changes (a subscription's paid period running out), the bodies expire after
  CACHES["pages"]["TIMEOUT"] seconds.

Per-user parts stay correct: the key holds the member's id (their name, unread count, owned courses and tier are in
the page), their time zone and staff flag; the CSRF token is taken out of the stored body and the requesting user's
own token is put back on each hit; a request with messages to show is never served from or stored in the cache.
"""
from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import _unmask_cipher_token, get_token
from django.utils import translation

VERSION_KEY = "pages:version"
PLACEHOLDER = "__PAGE_CACHE_CSRF_TOKEN__"
# Apps whose writes can change a learner page, and single models of other apps that do.
WRITE_APPS = frozenset({"members", "community"})
WRITE_MODELS = frozenset({"analytics.recommendationrun", "analytics.recommendation"})
_TOKEN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z0-9]{64}(?![A-Za-z0-9])")


def store():  # noqa: ANN201 - a Django cache backend
    return caches["pages"]


def version() -> str:
    """The current pages version (one shared-cache read)."""
    value = cache.get(VERSION_KEY)
    if value is None:
        cache.add(VERSION_KEY, uuid.uuid4().hex, None)
        value = cache.get(VERSION_KEY) or ""
    return value


def bump() -> None:
    """Every cached page is stale from now on, in every process."""
    cache.set(VERSION_KEY, uuid.uuid4().hex, None)


def _on_write(sender: Any, **kwargs: Any) -> None:
    meta = getattr(sender, "_meta", None)
    if meta is not None and (meta.app_label in WRITE_APPS or meta.label_lower in WRITE_MODELS):
        bump()


def connect_signals() -> None:
    for signal in (post_save, post_delete, m2m_changed):
        signal.connect(_on_write, dispatch_uid=f"pagecache-{id(signal)}")


class BumpOnWriteMiddleware:
    """After an unsafe request that did not fail, bump the pages version (covers `QuerySet.update()` writes)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (request.method not in ("GET", "HEAD", "OPTIONS", "TRACE") and response.status_code < 500
                and not request.path_info.startswith(tuple(getattr(settings, "PAGE_CACHE_WRITE_EXEMPT", ())))):
            bump()
        return response


def _has_messages(request: HttpRequest) -> bool:
    return "messages" in request.COOKIES or "_messages" in getattr(request, "session", {})


def page_key(request: HttpRequest, *, vary: str = "") -> str:
    user = request.user
    who = f"u{user.pk}:{int(user.is_staff)}:{user.time_zone}" if user.is_authenticated else "anon"
    htmx = f"{request.headers.get('HX-Request', '')}:{request.headers.get('HX-History-Restore-Request', '')}"
    raw = "|".join((request.get_host(), request.get_full_path(), htmx, translation.get_language() or "", who, vary, version()))
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


def thaw(stored: dict[str, Any], request: HttpRequest) -> HttpResponse:
    body = stored["body"]
    if PLACEHOLDER in body:
        body = body.replace(PLACEHOLDER, get_token(request))
    response = HttpResponse(body.encode(stored["charset"]))
    for header, value in stored["headers"].items():
        response[header] = value
    return response


def cached_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Serve a GET page from the pages cache; render and store it on a miss."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "GET" or _has_messages(request):
            return view(request, *args, **kwargs)
        key = page_key(request)
        stored = store().get(key)
        if stored is not None:
            return thaw(stored, request)
        response = view(request, *args, **kwargs)
        frozen = freeze(response, request)
        if frozen is not None:
            store().set(key, frozen)
        return response

    return wrapped
