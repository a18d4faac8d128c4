"""Warm the report caches for the default views, right after the nightly pipeline.

The pipeline writes new scores, segments and engagement, so it first bumps the cache version (every key embeds it:
nothing computed before the run is served after it), then computes what a staff member opening each page with no
filters would ask for, kept WARM_TTL_SECONDS instead of the usual five minutes. The first view after the nightly run
is then a cache hit. The keys must match the views' defaults exactly (analytics/views.py _selection: the window ends
at the end of today, UTC), which test_reports_warm.py checks by counting queries on the warmed pages.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.utils import timezone

from analytics.reports import churn, cohorts, metrics, repurchase, segments
from analytics.reports.common import (
    NO_FILTERS,
    WARM_TTL_SECONDS,
    Window,
    bump_cache_version,
    cache_ttl,
    reporting_today,
    start_of_day,
)

logger = logging.getLogger(__name__)

# The views' default windows in days (analytics/views.py): overview and churn 30, cohorts and repurchase 365,
# segments 90.
DEFAULT_DAYS = {"overview": 30, "cohorts": 365, "repurchase": 365, "segments": 90}


def default_window(days: int, now: datetime | None = None) -> Window:
    today = reporting_today(now or timezone.now())
    return Window(start_of_day(today - timedelta(days=days - 1)), start_of_day(today + timedelta(days=1)))


def warm_default_views(*, now: datetime | None = None) -> list[str]:
    """Bump the cache version, then compute every page's default view into the cache. Returns the warmed names.
    A failing page is logged and skipped: warming is an optimisation, never a reason to fail the pipeline."""
    now = now or timezone.now()
    bump_cache_version()
    warmed: list[str] = []

    def warm(name: str, fn: object) -> None:
        try:
            fn()  # type: ignore[operator]
            warmed.append(name)
        except Exception:
            logger.exception("warming the %s report failed", name)

    with cache_ttl(WARM_TTL_SECONDS):
        warm("overview", lambda: metrics.overview(window=default_window(DEFAULT_DAYS["overview"], now)))
        warm("cohorts", lambda: cohorts.cohort_report(as_of=default_window(DEFAULT_DAYS["cohorts"], now).end))
        year = default_window(DEFAULT_DAYS["repurchase"], now)
        warm("repurchase", lambda: repurchase.repurchase_report(window=year, as_of=year.end))
        warm("segments", lambda: segments.segment_report(window=default_window(DEFAULT_DAYS["segments"], now)))
        warm("churn", lambda: _warm_churn(now))
    return warmed


def _warm_churn(now: datetime) -> None:
    model = churn.serving_model()
    distribution = churn.risk_distribution(filters=NO_FILTERS, model=model)
    churn.calibration(now=now)
    # The page's default list: renewals within the model's horizon (churn.default_within_days).
    within = churn.default_within_days(model)
    qs = churn.at_risk_queryset(as_of=now, filters=NO_FILTERS, renewal_within_days=within, model=model,
                                scored_as_of=distribution.as_of)
    churn.at_risk_count(qs, churn.at_risk_count_params(
        filters=NO_FILTERS, min_risk=None, within=within, model=model, batch=distribution.as_of, now=now))
