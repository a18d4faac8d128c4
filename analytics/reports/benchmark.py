"""Time every staff report page on a large database and print the figures (a benchmark, never a test).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/reports_bench \\
        .venv/bin/python -m analytics.reports.benchmark --build 100000

--build N fills an EMPTY database (after `migrate`) with N synthetic members, their memberships, paid orders,
course purchases, events, one serving model's scores and a segmentation run (fixed seed), then runs ANALYZE on
PostgreSQL (without statistics the planner's plans after a bulk load take minutes). Then each page is fetched
with Django's test client, cold cache and warm cache, and the wall time and query count are printed. The overview is
also timed filtered (a tier, a segment), since only its default view is warmed by the nightly run.
"""
from __future__ import annotations

import argparse
import os
import random
import time
from datetime import UTC, datetime, timedelta


def build(members: int, seed: int = 7) -> None:
    from analytics.models import (
        Event,
        ModelVersion,
        PropensityScore,
        SegmentAssignment,
        SegmentRun,
    )
    from members.demo.bench import build_members

    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    users, n_subs, n_orders = build_members(members=members, rng=rng, now=now)
    Event.objects.bulk_create(
        (Event(member_id=u.pk, kind=rng.choice(["lesson_viewed", "course_viewed", "post_created"]),
               occurred_at=u.date_joined + (now - u.date_joined) * rng.random()) for u in users for _ in range(2)),
        batch_size=5000,
    )
    model = ModelVersion.objects.create(kind="repurchase", as_of=now - timedelta(days=1), horizon_days=30,
                                        algorithm="bench", is_serving=True, metrics={"roc_auc": 0.7},
                                        baselines={"roc_auc": 0.5})
    for as_of in (now - timedelta(days=45), now - timedelta(days=1)):
        PropensityScore.objects.bulk_create(
            (PropensityScore(member_id=u.pk, model_version=model, as_of=as_of, probability=rng.random(),
                             top_reasons=[{"text": "bench"}]) for u in users),
            batch_size=5000,
        )
    run = SegmentRun.objects.create(as_of=now - timedelta(days=1), k=4)
    SegmentAssignment.objects.bulk_create(
        (SegmentAssignment(run=run, member_id=u.pk, as_of=run.as_of, cluster=(c := rng.randrange(4)),
                           label=["Champions", "Loyal", "At risk", "Hibernating"][c],
                           features={"recency_days": rng.uniform(0, 300), "frequency": rng.randrange(10),
                                     "monetary": rng.uniform(0, 3000)}) for u in users),
        batch_size=5000,
    )
    print(f"built {len(users):,} members, {n_subs:,} subscriptions, {n_orders:,} orders")
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def time_pages() -> None:
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client

    from members.catalogue import selectors as catalogue_selectors
    from members.demo.bench import staff_user

    user = staff_user()
    client = Client()
    client.force_login(user)
    tier = catalogue_selectors.tiers().filter(slug="bench-plus").values_list("pk", flat=True).first()
    pages = ["/staff/", *([f"/staff/?tier={tier}"] if tier else []), "/staff/?segment=At+risk",
             "/staff/cohorts/", "/staff/repurchase/", "/staff/churn/", "/staff/models/",
             "/staff/segments/", "/staff/campaigns/", "/staff/churn/?format=csv"]
    # One throw-away request first, so the process's one-off costs (imports, URL resolver, template compilation,
    # the first database connection) are not charged to whichever page happens to be timed first.
    client.get("/staff/models/")
    print(f"{'page':32} {'cold ms':>9} {'queries':>8} {'warm ms':>9}")
    for path in pages:
        cache.clear()
        executed: list[str] = []

        def count(execute, sql, params, many, context, executed=executed):  # type: ignore[no-untyped-def]
            executed.append(sql)
            return execute(sql, params, many, context)

        # Counted with an execute wrapper: CaptureQueriesContext loses the queries run before the test client's
        # request_started signal resets the query log (it reported 6 for the overview's 14).
        with connection.execute_wrapper(count):
            started = time.perf_counter()
            response = client.get(path)
            if getattr(response, "streaming", False):
                b"".join(response.streaming_content)
            cold = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        response = client.get(path)
        if getattr(response, "streaming", False):
            b"".join(response.streaming_content)
        warm = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, (path, response.status_code)
        print(f"{path:32} {cold:9.0f} {len(executed):8d} {warm:9.0f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", type=int, default=0, help="Fill an empty database with this many members first.")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    if args.build:
        from members.accounts import selectors as account_selectors

        if account_selectors.users().exists():
            print("database is not empty; not building")
        else:
            started = time.perf_counter()
            build(args.build)
            print(f"build took {time.perf_counter() - started:.0f} s")
    time_pages()


if __name__ == "__main__":
    main()
