"""Liveness and readiness probes (plain Django views: no session, no throttle, no CSRF).

/health/ (liveness) answers 200 as long as the process serves requests; an orchestrator restarts the process when
it stops. /ready/ (readiness) checks what a request needs: the database, the shared cache, the Celery broker, and
that no migration is pending. Any failure answers 503 naming the failing part, so the load balancer takes the
instance out of rotation until it recovers.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from django.core.cache import cache
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

logger = logging.getLogger(__name__)
BROKER_TIMEOUT_SECONDS = 2.0


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_cache() -> None:
    key = f"ready:{uuid.uuid4().hex}"
    cache.set(key, "1", 10)
    value = cache.get(key)
    cache.delete(key)
    if value != "1":
        raise RuntimeError("cache did not return the value just written")


def check_broker() -> None:
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)


def check_migrations() -> None:
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        raise RuntimeError(f"{len(plan)} migration(s) not applied, first {plan[0][0].app_label}.{plan[0][0].name}")


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "cache": check_cache,
    "broker": check_broker,
    "migrations": check_migrations,
}


@never_cache
def liveness(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
def readiness(request: HttpRequest) -> JsonResponse:
    results: dict[str, str] = {}
    failing: list[str] = []
    for name, check in CHECKS.items():
        if name == "migrations" and "database" in failing:
            results[name] = "skipped"
            continue
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - any failure of a dependency means "not ready"
            logger.warning("readiness check %s failed: %s", name, exc)
            results[name] = f"fail: {type(exc).__name__}: {str(exc)[:200]}"
            failing.append(name)
        else:
            results[name] = "ok"
    status = 503 if failing else 200
    return JsonResponse({"status": "fail" if failing else "ok", "failing": failing, "checks": results}, status=status)


class ProbeMiddleware:
    """First in MIDDLEWARE: answers /health/ and /ready/ before the ALLOWED_HOSTS check and the HTTPS redirect, since
    probes come from the orchestrator (Docker HEALTHCHECK, a load balancer) by IP address over plain HTTP."""

    def __init__(self, get_response: Callable[[HttpRequest], JsonResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> JsonResponse:
        if request.method in ("GET", "HEAD"):
            if request.path == "/health/":
                return liveness(request)
            if request.path == "/ready/":
                return readiness(request)
        return self.get_response(request)
