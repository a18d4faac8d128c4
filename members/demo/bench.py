"""Synthetic rows for the staff reports benchmark (analytics/reports/benchmark.py): members, tiers, courses,
memberships and their paid orders, bulk-created with a caller's seeded generator (never run by the app itself)."""
from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal

from dateutil.relativedelta import relativedelta

from members.models import Course, MembershipTier, Order, Subscription, User


def build_members(*, members: int, rng: random.Random, now: datetime) -> tuple[list[User], int, int]:
    """Bulk-create the benchmark's tiers, courses, members, memberships and orders; (member rows, #subs, #orders)."""
    tiers = [
        MembershipTier.objects.create(name=n, slug=f"bench-{n.lower()}", monthly_price=Decimal(p), yearly_price=Decimal(p) * 10)
        for n, p in (("Basic", "49"), ("Plus", "99"), ("Pro", "199"))
    ]
    courses = [
        Course.objects.create(title=f"Bench course {i}", slug=f"bench-course-{i}", price=Decimal(100 + 10 * i),
                              is_published=True)
        for i in range(40)
    ]
    users = [
        User(email=f"bench{i}@example.com", display_name=f"Bench {i}", password="!",
             acquisition_source=rng.choice(["organic", "referral", "campaign", "social"]),
             date_joined=now - timedelta(days=rng.uniform(1, 420)))
        for i in range(members)
    ]
    User.objects.bulk_create(users, batch_size=5000)
    users = list(User.objects.filter(email__startswith="bench").only("pk", "date_joined"))
    subs: list[Subscription] = []
    for u in users:
        if rng.random() < 0.4:
            started = u.date_joined + timedelta(days=rng.uniform(0, 30))
            if started >= now:
                continue
            yearly = rng.random() < 0.2
            ended = started + timedelta(days=rng.uniform(30, 400)) if rng.random() < 0.35 else None
            if ended and ended >= now:
                ended = None
            subs.append(Subscription(
                member_id=u.pk, tier=rng.choice(tiers), billing_period="year" if yearly else "month",
                status=("canceled" if rng.random() < 0.6 else "expired") if ended else "active",
                started_at=started, current_period_start=started, current_period_end=started + timedelta(days=30),
                ended_at=ended, cancellation_reason=rng.choice(["too_expensive", "not_using", "content"]) if ended else "",
                canceled_at=ended - timedelta(days=5) if ended else None,
            ))
    Subscription.objects.bulk_create(subs, batch_size=5000)
    orders: list[Order] = []
    for s in Subscription.objects.select_related("tier").iterator(chunk_size=5000):
        step = relativedelta(years=1) if s.billing_period == "year" else relativedelta(months=1)
        end = s.ended_at or now
        at, first = s.started_at, True
        while at < end:
            price = s.tier.price_for(s.billing_period)
            orders.append(Order(member_id=s.member_id, kind="subscription", tier_id=s.tier_id, subscription_id=s.pk,
                                billing_period=s.billing_period, is_renewal=not first, list_price=price,
                                amount_paid=price, status="paid", created_at=at, paid_at=at))
            at, first = at + step, False
    for u in users:
        if rng.random() < 0.6:
            at = u.date_joined + timedelta(days=rng.uniform(0, 20))
            for _ in range(1 + (rng.random() < 0.3) + (rng.random() < 0.1)):
                if at >= now:
                    break
                c = rng.choice(courses)
                refunded = rng.random() < 0.03
                orders.append(Order(member_id=u.pk, kind="course", course_id=c.pk, list_price=c.price,
                                    amount_paid=c.price, status="refunded" if refunded else "paid", created_at=at,
                                    paid_at=at))
                at += timedelta(days=rng.expovariate(1 / 60))
    Order.objects.bulk_create(orders, batch_size=5000)
    return users, len(subs), len(orders)


def staff_user() -> User:
    """The benchmark's staff account, created on first use."""
    user, _ = User.objects.get_or_create(email="bench-staff@example.com", defaults={"is_staff": True, "is_superuser": True})
    return user
