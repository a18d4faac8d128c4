"""API throttles beyond DRF's per-user and per-anonymous-IP ones.

A rate missing from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] switches the throttle off instead of raising, so test
settings that list only the basic rates keep working; production settings list them all.
"""
from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle


class _OptionalRateThrottle(SimpleRateThrottle):
    def get_rate(self) -> str | None:
        return self.THROTTLE_RATES.get(self.scope)


class IPRateThrottle(_OptionalRateThrottle):
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
