"""Benchmark the staff member profile (/staff/members/<id>/) on a large database, light vs heavy member.

    .venv/bin/python bench/bench_profile.py --members 100000 --events 1000000

Creates a fresh PostgreSQL database bench_profile_<pid> on 127.0.0.1:5432 (dropped afterwards unless --keep),
migrates it, bulk-loads `--members` members with `--events` events and one paid order each, then gives one "heavy"
member a long history (--heavy-events events, --heavy-orders orders, daily engagement scores for two years,
messages, posts). Prints, for the light and the heavy member, the number of queries and the median wall time of
`member_profile()` plus the page render, over --repeat runs.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--heavy-events", type=int, default=50_000)
    parser.add_argument("--heavy-orders", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    db = f"bench_profile_{os.getpid()}"
    url = f"postgres://postgres@127.0.0.1:5432/{db}"
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {db}"], check=True)
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings"}
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        os.environ.update(env)
        run(args)
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"DROP DATABASE IF EXISTS {db}"], check=False)


def run(args: argparse.Namespace) -> None:
    import random

    import django

    django.setup()
    from django.db import connection
    from django.template.loader import render_to_string
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from analytics.models import EngagementScore, Event, MessageLog
    from analytics.profiles.selectors import member_profile
    from community.models import Post
    from members.models import Course, Order, User

    rng = random.Random(7)
    now = timezone.now()
    t0 = time.perf_counter()
    courses = Course.objects.bulk_create(
        [Course(title=f"Course {i}", slug=f"c-{i}", topic=["data", "design", "writing", "ops"][i % 4], price=Decimal(99),
                is_published=True) for i in range(200)]
    )
    users = User.objects.bulk_create(
        [User(email=f"m{i}@bench.test", display_name=f"M {i}", password="!") for i in range(args.members)], batch_size=5000
    )
    Order.objects.bulk_create(
        [Order(member=u, kind="course", course=rng.choice(courses), list_price=99, amount_paid=99, status="paid",
               paid_at=now - timedelta(days=rng.randint(1, 700))) for u in users], batch_size=5000
    )
    kinds = ["lesson_viewed", "lesson_completed", "course_viewed", "recommendation_impression", "recommendation_click"]
    batch: list[Event] = []
    for _ in range(args.events):
        batch.append(Event(member=users[rng.randrange(len(users))], kind=rng.choice(kinds),
                           occurred_at=now - timedelta(minutes=rng.randint(0, 700 * 1440))))
        if len(batch) == 10_000:
            Event.objects.bulk_create(batch)
            batch.clear()
    Event.objects.bulk_create(batch)
    light, heavy = users[0], users[1]
    Event.objects.bulk_create(
        [Event(member=heavy, kind=rng.choice(kinds), occurred_at=now - timedelta(minutes=rng.randint(0, 700 * 1440)))
         for _ in range(args.heavy_events)], batch_size=10_000
    )
    Order.objects.bulk_create(
        [Order(member=heavy, kind="course", course=rng.choice(courses), list_price=99, amount_paid=99, status="paid",
               paid_at=now - timedelta(days=rng.randint(1, 700))) for _ in range(args.heavy_orders)], batch_size=5000
    )
    EngagementScore.objects.bulk_create(
        [EngagementScore(member=heavy, as_of=now - timedelta(days=d), score=rng.uniform(0, 100)) for d in range(730)]
    )
    MessageLog.objects.bulk_create(
        [MessageLog(member=heavy, kind="other", dedupe_key=f"bench:{i}", subject="Hello") for i in range(500)]
    )
    Post.objects.bulk_create([Post(author=heavy, title=f"Post {i}", body="b") for i in range(300)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"loaded {args.members:,} members, {args.events + args.heavy_events:,} events in {time.perf_counter() - t0:.0f}s")

    for label, member in (("light", light), ("heavy", heavy)):
        timings = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            with CaptureQueriesContext(connection) as ctx:
                profile = member_profile(member_id=member.pk)
                render_to_string("analytics/profile/profile.html", {"p": profile, "member": profile.member})
            timings.append(time.perf_counter() - start)
        print(f"{label:5s} member: {len(ctx.captured_queries)} queries, median {1000 * statistics.median(timings):.0f} ms "
              f"(min {1000 * min(timings):.0f} ms) over {args.repeat} runs")


if __name__ == "__main__":
    main()
