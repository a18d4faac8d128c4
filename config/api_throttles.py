"""API throttles beyond DRF's per-user and per-anonymous-IP ones.

A rate missing from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] switches the throttle off instead of raising, so test
settings that list only the basic rates keep working; production settings list them all.
"""
from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.request import Request
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle

# DRF's sliding log (SimpleRateThrottle.allow_request) as one atomic Redis script over one or more throttles: drop
# each log's entries at or before now - window, refuse if any log holds `limit` entries (answering which one, its
# size and its oldest entry, for Retry-After), else add this request to every log. First, optionally, the state a
# cached answer depends on (members.pagecache.front): if any of those keys does not hold its expected value, answer
# "stale" and count nothing. KEYS: the state keys, then the logs; ARGV: the number of state keys, now, a member
# unique to this request, per state key its expected value (as stored) and whether a missing key matches ("1"),
# then per log the cutoff (now - window), the window in whole seconds (the key's expiry) and the limit. Times are
# passed as Python's repr of the float, never through Lua's numbers.
_SLIDING_LOG = """
local states = tonumber(ARGV[1])
for i = 1, states do
  local value = redis.call('GET', KEYS[i])
  if value == false then
    if ARGV[3 + 2 * i] ~= '1' then return {-1} end
  elseif value ~= ARGV[2 + 2 * i] then
    return {-1}
  end
end
local at = 3 + 2 * states
for i = states + 1, #KEYS do
  local arg = at + 3 * (i - states - 1)
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', ARGV[arg + 1])
  local count = redis.call('ZCARD', KEYS[i])
  if count >= tonumber(ARGV[arg + 3]) then
    local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    return {0, i - states, count, oldest[2] or ARGV[2]}
  end
end
for i = states + 1, #KEYS do
  local arg = at + 3 * (i - states - 1)
  redis.call('ZADD', KEYS[i], ARGV[2], ARGV[3])
  redis.call('EXPIRE', KEYS[i], ARGV[arg + 2])
end
return {1}
"""
_script: Any = None


class CountedThrottle:
    """The request counts live in the "throttle" cache: Redis when REDIS_URL is set (one budget for all workers),
    else each worker's memory — no database write per API request (two `UPDATE django_cache` transactions before,
    each taking SQLite's write lock). Each of API_THROTTLE_PROCESSES workers then allows its share of the rate,
    rounded down (at least 1), so all workers together never allow more than the rate (issue 19).

    In Redis the log is a sorted set checked and written by one script (`redis_sliding_log`), DRF's rule exactly:
    DRF's own read-modify-write of a pickled list loses requests when two workers answer the same client at once
    (both read the same list, the last write wins), so concurrent clients got more than the rate; and it moved the
    whole list (up to the rate's size) twice per request. Without Redis DRF's code runs unchanged."""

    @property
    def cache(self):  # noqa: ANN201 - a Django cache backend
        return caches["throttle"]

    def parse_rate(self, rate: str | None) -> tuple[int | None, int | None]:
        num, duration = super().parse_rate(rate)  # type: ignore[misc]
        if num is None:
            return num, duration
        return max(1, num // max(1, settings.API_THROTTLE_PROCESSES)), duration

    def allow_request(self, request: Request, view: Any) -> bool:
        if not isinstance(self.cache, RedisCache):
            return super().allow_request(request, view)  # type: ignore[misc]
        if self.rate is None:  # type: ignore[attr-defined]
            return True
        self.key = self.get_cache_key(request, view)  # type: ignore[attr-defined]
        if self.key is None:
            return True
        return redis_sliding_log([self])

    def wait(self) -> float | None:
        refused = getattr(self, "refused", None)
        if refused is None:
            return super().wait()  # type: ignore[misc]
        count, oldest = refused  # what SimpleRateThrottle.wait reads from its history, from the script
        available = self.num_requests - count + 1  # type: ignore[attr-defined]
        if available <= 0:
            return None
        return (self.duration - (self.now - oldest)) / available  # type: ignore[attr-defined]


def redis_sliding_log(throttles: Sequence[Any], state: Sequence[tuple[str, bytes, bool]] = ()) -> bool | None:
    """Check and record one request in the Redis logs of these throttles (keys set, same Redis cache) in one round
    trip: recorded in all when every log has room (True), in none when one is full (False; that throttle's
    `refused` is set for its `wait`). One throttle is DRF's `allow_request`; several are the front of the page
    cache's check, which may also pass `state`: (full key, expected stored value, whether a missing key matches) on
    the same Redis server, checked first — None, nothing counted, when one does not match."""
    cache = throttles[0].cache
    now = throttles[0].timer()
    keys = [key for key, _, _ in state]
    args: list[Any] = [str(len(state)), repr(now), uuid.uuid4().hex]
    for _, expected, missing_matches in state:
        args += [expected, "1" if missing_matches else "0"]
    for throttle in throttles:
        throttle.now, throttle.refused = now, None
        keys.append(cache.make_and_validate_key("zlog:" + throttle.key))  # not DRF's pickled-list key
        args += [repr(now - throttle.duration), str(math.ceil(throttle.duration)), str(throttle.num_requests)]
    client = cache._cache.get_client(keys[0], write=True)
    global _script
    if _script is None:
        _script = client.register_script(_SLIDING_LOG)  # EVALSHA: the script's text is sent once per server
    answer = _script(keys=keys, args=args, client=client)
    if int(answer[0]) == 1:
        return True
    if int(answer[0]) == -1:
        return None
    throttles[int(answer[1]) - 1].refused = (int(answer[2]), float(answer[3]))
    return False


class CountedAnonRateThrottle(CountedThrottle, AnonRateThrottle):
    pass


class CountedUserRateThrottle(CountedThrottle, UserRateThrottle):
    pass


class _OptionalRateThrottle(SimpleRateThrottle):
    def get_rate(self) -> str | None:
        return self.THROTTLE_RATES.get(self.scope)


class IPRateThrottle(CountedThrottle, _OptionalRateThrottle):
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
