"""The demo seeder: it runs, it is deterministic, every invariant holds, and the behaviour model leaves real signal.

Signal checks compute rates from the generated rows (what a later model would see), never from the generator's
internals, so a change that breaks the behaviour model fails here.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from dateutil.relativedelta import relativedelta
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, F, Max, Min, Q

from analytics.models import Event
from community.models import Comment, Notification, Post, Reaction
from members.demo.generator import (
    LEARNER_EMAIL,
    LEARNER_PASSWORD,
    STAFF_EMAIL,
    STAFF_PASSWORD,
)
from members.models import (
    Coupon,
    CouponRedemption,
    Course,
    Enrollment,
    LessonProgress,
    MembershipTier,
    Order,
    Referral,
    Review,
    Subscription,
    SubscriptionChange,
    User,
)

TODAY = "2026-06-15"
TODAY_DT = datetime(2026, 6, 15, tzinfo=UTC)


def seed(members: int = 60, months: int = 3, seed: int = 11, *extra: str) -> str:
    out = StringIO()
    if "--flush" in extra and connection.vendor == "postgresql":
        # Inside the test's transaction the previous seed's deferred FK checks are still pending, and PostgreSQL
        # refuses to TRUNCATE (flush) such tables; firing the checks now is what a commit would have done.
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    call_command("seed_demo", "--members", str(members), "--months", str(months), "--seed", str(seed),
                 "--today", TODAY, "--no-progress", *extra, stdout=out)
    return out.getvalue()


def fingerprint() -> dict:
    """Counts per table plus the full order ledger and subscriptions by natural keys (ids may differ)."""
    models = [User, Course, MembershipTier, Subscription, Order, Coupon, CouponRedemption, Enrollment, LessonProgress,
              Post, Comment, Reaction, Notification, Event]
    return {
        "counts": {m.__name__: m.objects.count() for m in models},
        "orders": sorted(
            Order.objects.values_list("member__email", "kind", "course__slug", "tier__slug", "amount_paid", "status",
                                      "created_at", "coupon__code")
        ),
        "subs": sorted(Subscription.objects.values_list("member__email", "tier__slug", "status", "started_at",
                                                        "current_period_end")),
        "events": Event.objects.aggregate(first=Min("occurred_at"), last=Max("occurred_at")),
    }


@pytest.mark.django_db
def test_it_seeds_a_small_platform_and_prints_both_logins():
    output = seed()
    assert STAFF_EMAIL in output and STAFF_PASSWORD in output
    assert LEARNER_EMAIL in output and LEARNER_PASSWORD in output
    assert Course.objects.filter(is_published=True).count() >= 40
    assert all(c.title_zh for c in Course.objects.all())
    assert 3 <= MembershipTier.objects.count() <= 4
    assert User.objects.filter(is_staff=False).count() == 60
    assert Order.objects.filter(status=Order.Status.PAID).exists()
    for kind in ("signed_up", "login", "lesson_viewed", "lesson_completed", "course_purchased", "post_created",
                 "comment_created", "reaction_added", "coupon_issued"):
        assert Event.objects.filter(kind=kind, source="demo").exists(), kind


@pytest.mark.django_db
def test_demo_logins_work_and_the_learner_has_a_full_account(client):
    seed()
    staff = User.objects.get(email=STAFF_EMAIL)
    assert staff.is_staff and staff.is_superuser and staff.check_password(STAFF_PASSWORD)
    learner = User.objects.get(email=LEARNER_EMAIL)
    assert learner.check_password(LEARNER_PASSWORD)
    assert client.login(email=LEARNER_EMAIL, password=LEARNER_PASSWORD)
    live = Subscription.objects.get(member=learner, status__in=Subscription.LIVE_STATUSES)
    assert live.is_active_at(TODAY_DT)
    assert LessonProgress.objects.filter(member=learner, completed_at__isnull=False).count() >= 3
    assert Enrollment.objects.filter(member=learner).count() >= 2
    assert Post.objects.filter(author=learner).exists()
    coupon = Coupon.objects.get(assigned_member=learner, valid_until__gt=TODAY_DT)
    assert coupon.times_redeemed == 0


@pytest.mark.django_db
def test_same_seed_and_today_give_identical_data_and_another_seed_differs():
    seed()
    first = fingerprint()
    seed(60, 3, 11, "--flush")
    assert fingerprint() == first
    seed(60, 3, 12, "--flush")
    assert fingerprint()["orders"] != first["orders"]


@pytest.mark.django_db
def test_if_empty_skips_a_seeded_database_and_a_second_seed_is_refused():
    seed()
    before = Order.objects.count()
    assert "not seeding" in seed(60, 3, 99, "--if-empty")
    assert Order.objects.count() == before
    with pytest.raises(Exception, match="--flush"):
        seed(60, 3, 99)


@pytest.mark.django_db
def test_every_invariant_holds():
    seed(120, 4, 5)
    start = TODAY_DT - relativedelta(months=4)
    # At most one live subscription per member (the database also enforces it).
    assert not (Subscription.objects.filter(status__in=Subscription.LIVE_STATUSES)
                .values("member").annotate(n=Count("id")).filter(n__gt=1).exists())
    # Paid and refunded orders carry paid_at; failed ones don't; amounts are list - discount, never negative.
    assert not Order.objects.filter(status__in=["paid", "refunded"], paid_at__isnull=True).exists()
    assert not Order.objects.filter(status="failed", paid_at__isnull=False).exists()
    assert not Order.objects.exclude(amount_paid=F("list_price") - F("discount")).exists()
    assert not Order.objects.filter(refunded_at__isnull=False).exclude(status="refunded").exists()
    # Paid renewals per subscription equal its renewal_count.
    for sub in Subscription.objects.annotate(
        renewals=Count("orders", filter=Q(orders__is_renewal=True, orders__status="paid"))
    ):
        assert sub.renewals == sub.renewal_count, sub.pk
        assert sub.current_period_end > sub.current_period_start
        if sub.status in ("canceled", "expired"):
            assert sub.ended_at is not None and sub.ended_at <= TODAY_DT
        if sub.status in ("active", "trialing"):
            assert sub.current_period_end > TODAY_DT
    # A member's memberships do not overlap in time.
    ends: dict[int, datetime] = {}
    for sub in Subscription.objects.order_by("member_id", "started_at"):
        if sub.member_id in ends:
            assert sub.started_at >= ends[sub.member_id]
        ends[sub.member_id] = sub.ended_at or datetime.max.replace(tzinfo=UTC)
    # Learning happens after enrolling, lessons finish after they start, nothing happens outside the window.
    enrolled = {(e.member_id, e.course_id): e.enrolled_at for e in Enrollment.objects.all()}
    for p in LessonProgress.objects.select_related("lesson"):
        assert (p.member_id, p.lesson.course_id) in enrolled
        assert p.started_at >= enrolled[(p.member_id, p.lesson.course_id)]
        assert p.completed_at is None or p.completed_at >= p.started_at
    assert not Event.objects.filter(Q(occurred_at__gte=TODAY_DT) | Q(occurred_at__lt=start)).exists()
    assert not Comment.objects.filter(created_at__lt=F("post__created_at")).exists()
    assert not Reaction.objects.filter(member=F("post__author")).exists()
    # Events agree with rows.
    course_orders = Order.objects.filter(kind="course", status__in=["paid", "refunded"]).count()
    assert Event.objects.filter(kind="course_purchased").count() == course_orders
    assert Event.objects.filter(kind="lesson_completed").count() == LessonProgress.objects.filter(
        completed_at__isnull=False).count()
    assert Event.objects.filter(kind="post_created").count() == Post.objects.exclude(author__email=STAFF_EMAIL).count()
    # The subscription ledger: every subscription has one, it starts at started_at, runs in time order before today,
    # and its last row is the state the subscription row holds today.
    state = ("status", "tier_id", "billing_period", "current_period_start", "current_period_end",
             "cancel_at_period_end", "canceled_at")
    changes: dict[int, list[SubscriptionChange]] = {}
    for change in SubscriptionChange.objects.order_by("at", "id"):
        changes.setdefault(change.subscription_id, []).append(change)
    subs = list(Subscription.objects.all())
    assert subs and {s.pk for s in subs} == set(changes)
    for sub in subs:
        rows = changes[sub.pk]
        assert rows[0].kind == "started" and rows[0].at == sub.started_at and rows[-1].at < TODAY_DT, sub.pk
        assert all(r.member_id == sub.member_id for r in rows)
        assert {f: getattr(rows[-1], f) for f in state} == {f: getattr(sub, f) for f in state}, sub.pk


@pytest.mark.django_db
def test_reviews_and_referrals_are_consistent():
    seed(200, 6, 8)
    assert Review.objects.exists() and Referral.objects.exists()
    enrolled = set(Enrollment.objects.values_list("member", "course"))
    for review in Review.objects.annotate(marks=Count("helpful_marks")):
        assert (review.member_id, review.course_id) in enrolled
        assert review.helpful_count == review.marks
        assert not review.helpful_marks.filter(member=review.member_id).exists()
    assert Event.objects.filter(kind="course_reviewed").count() == Review.objects.count()
    window = timedelta(days=14)
    for ref in Referral.objects.select_related("first_order", "welcome_coupon", "reward_coupon", "referred"):
        assert ref.referrer_id != ref.referred_id
        assert ref.welcome_coupon.assigned_member_id == ref.referred_id
        assert ref.referred.acquisition_source == "referral"
        assert ref.referrer.date_joined < ref.referred.date_joined
        first = (Order.objects.filter(member=ref.referred_id, paid_at__isnull=False, amount_paid__gt=0)
                 .order_by("paid_at", "pk").first())
        assert ref.first_order_id == (first.pk if first else None)
        if ref.status == "rewarded":
            assert first.status == "paid" and first.paid_at + window <= TODAY_DT
            assert ref.reward_coupon.assigned_member_id == ref.referrer_id
        elif ref.status == "rejected":
            assert first.status == "refunded"
        elif ref.status == "qualified":
            assert first.paid_at + window > TODAY_DT
        else:
            assert first is None and ref.reward_coupon_id is None


@pytest.mark.django_db
def test_coupon_counters_match_redemptions_and_limits():
    seed(150, 6, 3)
    assert CouponRedemption.objects.exists()
    for coupon in Coupon.objects.annotate(n=Count("redemptions")):
        assert coupon.times_redeemed == coupon.n, coupon.code
        assert coupon.max_redemptions is None or coupon.n <= coupon.max_redemptions
        assert not coupon.redemptions.values("member").annotate(k=Count("id")).filter(k__gt=coupon.max_per_member).exists()
    for r in CouponRedemption.objects.select_related("coupon", "order"):
        assert r.order.coupon_id == r.coupon_id and r.order.member_id == r.member_id
        assert r.coupon.valid_from <= r.redeemed_at
        assert r.coupon.valid_until is None or r.redeemed_at < r.coupon.valid_until
        assert r.coupon.assigned_member_id in (None, r.member_id)
        assert r.order.discount > 0
    assert not Order.objects.filter(coupon__isnull=False, status="paid", redemption__isnull=True).exists()
    assert Event.objects.filter(kind="coupon_redeemed").count() == CouponRedemption.objects.count()


@pytest.fixture(scope="module")
def medium_platform(django_db_setup, django_db_blocker):
    """One larger seed shared by the signal tests (they only read)."""
    with django_db_blocker.unblock():
        seed(450, 8, 21, "--flush")
        yield
        call_command("flush", interactive=False, verbosity=0)


@pytest.mark.django_db
def test_past_learning_predicts_repurchase(medium_platform):
    cutoff = TODAY_DT - timedelta(days=75)
    members = list(User.objects.filter(is_staff=False, date_joined__lt=cutoff - timedelta(days=60))
                   .values_list("id", flat=True))
    lessons = dict(
        LessonProgress.objects.filter(completed_at__gte=cutoff - timedelta(days=60), completed_at__lt=cutoff)
        .values("member").annotate(n=Count("id")).values_list("member", "n")
    )
    buyers = set(Order.objects.filter(status="paid", paid_at__gte=cutoff).values_list("member", flat=True))
    learners = [m for m in members if lessons.get(m, 0) >= 4]
    idle = [m for m in members if lessons.get(m, 0) == 0]
    assert len(learners) > 50 and len(idle) > 50
    rate_learners = sum(m in buyers for m in learners) / len(learners)
    rate_idle = sum(m in buyers for m in idle) / len(idle)
    assert rate_learners > rate_idle + 0.1, (rate_learners, rate_idle)


@pytest.mark.django_db
def test_community_activity_predicts_renewal(medium_platform):
    """At each renewal decision, members who posted, commented or reacted in the 60 days before renew more often."""
    community: dict[int, list[datetime]] = {}
    for member_id, when in Event.objects.filter(
        kind__in=["post_created", "comment_created", "reaction_added"]
    ).values_list("member", "occurred_at"):
        community.setdefault(member_id, []).append(when)
    decisions = [(m, t, True) for m, t in Order.objects.filter(is_renewal=True, status="paid")
                 .values_list("member", "paid_at")]
    decisions += [(m, t, False) for m, t in Subscription.objects.filter(status__in=["canceled", "expired"])
                  .exclude(trial_end=F("current_period_end")).values_list("member", "ended_at")]
    stats = {True: [0, 0], False: [0, 0]}
    for member_id, when, renewed in decisions:
        social = any(when - timedelta(days=60) <= t < when for t in community.get(member_id, ()))
        stats[social][0] += renewed
        stats[social][1] += 1
    assert stats[True][1] > 20 and stats[False][1] > 20, stats
    social_rate = stats[True][0] / stats[True][1]
    silent_rate = stats[False][0] / stats[False][1]
    assert social_rate > silent_rate + 0.05, (social_rate, silent_rate)


@pytest.mark.django_db
def test_random_monthly_coupons_raise_purchases(medium_platform):
    """The monthly personal coupons go to random members, so holders vs everyone else is a fair comparison."""
    start = TODAY_DT - relativedelta(months=8)
    held = bought_held = other = bought_other = 0
    for m in range(8):
        lo, hi = start + relativedelta(months=m), start + relativedelta(months=m + 1)
        members = set(User.objects.filter(is_staff=False, date_joined__lt=lo).values_list("id", flat=True))
        holders = set(Coupon.objects.filter(source="campaign", valid_from__gte=lo, valid_from__lt=hi)
                      .values_list("assigned_member", flat=True)) & members
        buyers = set(Order.objects.filter(status__in=["paid", "refunded"], is_renewal=False, paid_at__gte=lo,
                                          paid_at__lt=hi).values_list("member", flat=True))
        held += len(holders)
        bought_held += len(holders & buyers)
        other += len(members - holders)
        bought_other += len((members - holders) & buyers)
    assert held > 150
    uplift = bought_held / held - bought_other / other
    assert 0.02 < uplift < 0.2, uplift


def test_behaviour_model_probabilities_move_the_right_way():
    from members.demo.behaviour import monthly_purchase_probability as p

    base = p(lessons=2, community=1, paid_orders=1, has_coupon=False)
    assert p(lessons=2, community=1, paid_orders=1, has_coupon=True) > base
    assert p(lessons=8, community=1, paid_orders=1, has_coupon=False) > base
    assert p(lessons=2, community=6, paid_orders=1, has_coupon=False) > base
    assert p(lessons=2, community=1, paid_orders=4, has_coupon=False) > base
    assert p(lessons=2, community=1, paid_orders=1, has_coupon=False, price_sensitivity=0.9) < base
