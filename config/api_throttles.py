"""API throttles beyond DRF's per-user and per-anonymous-IP ones.

A rate missing from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] switches the throttle off instead of raising, so test
settings that list only the basic rates keep working; production settings list them all.
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import caches
from rest_framework.request import Request
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle


class _CountedPerProcess:
    """The request counts live in the "throttle" cache: Redis when REDIS_URL is set (one budget for all workers),
    else each worker's memory — no database write per API request (two `UPDATE django_cache` transactions before,
    each taking SQLite's write lock). Each of API_THROTTLE_PROCESSES workers then allows its share of the rate,
    rounded down (at least 1), so all workers together never allow more than the rate (issue 19)."""

    @property
    def cache(self):  # noqa: ANN201 - a Django cache backend
        return caches["throttle"]

    def parse_rate(self, rate: str | None) -> tuple[int | None, int | None]:
        num, duration = super().parse_rate(rate)  # type: ignore[misc]
        if num is None:
            return num, duration
        return max(1, num // max(1, settings.API_THROTTLE_PROCESSES)), duration


class CountedAnonRateThrottle(_CountedPerProcess, AnonRateThrottle):
    pass


class CountedUserRateThrottle(_CountedPerProcess, UserRateThrottle):
    pass


class _OptionalRateThrottle(SimpleRateThrottle):
    def get_rate(self) -> str | None:
        return self.THROTTLE_RATES.get(self.scope)


class IPRateThrottle(_CountedPerProcess, _OptionalRateThrottle):
    """Every request, signed in or not, counts against its client IP: one address holding many accounts or tokens
    still shares one budget (UserRateThrottle alone would give each account its own)."""

    scope = "ip"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginRateThrottle(_OptionalRateThrottle):
    """Password checks (token creation) per IP, far below the general rate, so passwords cannot be guessed at
    hundreds a minute."""

    scope = "login"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if request.method != "POST":
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
