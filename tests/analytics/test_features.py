from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from analytics.ml import datasets, features
from community.models import Comment, Post
from members.models import Review, Subscription
from tests.analytics.factories import append_future_history, make_platform
from tests.members.factories import CourseFactory, SubscriptionFactory, TierFactory, UserFactory

AS_OF = datetime(2025, 6, 1, tzinfo=UTC)


def ts(days_before: float) -> pd.Timestamp:
    return pd.Timestamp(AS_OF - timedelta(days=days_before))


def empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def snapshot(**frames: pd.DataFrame) -> datasets.Snapshot:
    base = {
        "members": pd.DataFrame({"member_id": [1, 2, 3], "external_id": [None, None, None],
                                 "date_joined": [ts(200), ts(100), ts(10)]}),
        "orders": empty(["order_id", "member_id", "kind", "course_id", "tier_id", "amount", "paid_at", "is_renewal",
                         "coupon_id", "billing_period"]),
        "event_counts": empty(["member_id", "kind", "n7", "n30", "n90", "last"]),
        "last_event": empty(["member_id", "last_event_at"]),
        "lessons": empty(["member_id", "lessons_7", "lessons_30", "lessons_90", "lessons_total", "last_lesson_at"]),
        "enrollments": empty(["member_id", "course_id", "source", "enrolled_at", "completed_at"]),
        "community": empty([]),
        "coupons": empty(["member_id", "coupons_redeemed"]),
        "subscriptions": empty([]),
        "tiers": pd.DataFrame({"tier_id": [1], "monthly_price": [50.0], "order": [0], "all_courses": [True]}),
    }
    base.update(frames)
    return datasets.Snapshot(as_of=AS_OF, **base)


def orders_frame() -> pd.DataFrame:
    # Member 1: three orders 100, 60 and 10 days ago; member 2: one order 30 days ago; member 3: none.
    return pd.DataFrame({
        "order_id": [1, 2, 3, 4], "member_id": [1, 1, 1, 2], "kind": ["course", "course", "subscription", "course"],
        "course_id": [10, 11, None, 10], "tier_id": [None, None, 1, None], "amount": [100.0, 50.0, 30.0, 80.0],
        "paid_at": [ts(100), ts(60), ts(10), ts(30)], "is_renewal": [False, False, True, False],
        "coupon_id": [None, 5, None, None], "billing_period": ["", "", "month", ""],
    })


def test_it_computes_recency_frequency_monetary_and_intervals():
    frame = features.build(snapshot(orders=orders_frame()))
    one, two = frame.loc[1], frame.loc[2]
    assert one["recency_days"] == pytest.approx(10)
    assert one["frequency"] == 3 and one["frequency_90"] == 2 and one["course_orders_90"] == 1
    assert one["monetary"] == pytest.approx(180) and one["avg_order_value"] == pytest.approx(60)
    assert one["ipi_mean"] == pytest.approx(45) and one["ipi_std"] == pytest.approx(5)
    assert one["renewals_total"] == 1 and one["tenure_days"] == pytest.approx(200)
    assert two["recency_days"] == pytest.approx(30) and two["ipi_mean"] == 0


def test_a_member_who_never_bought_gets_zeros_and_tenure_as_recency():
    frame = features.build(snapshot(orders=orders_frame()))
    three = frame.loc[3]
    assert three["frequency"] == 0 and three["monetary"] == 0 and three["has_purchased"] == 0
    assert three["recency_days"] == pytest.approx(10)  # "not in the 10 days we have known them"
    assert three["days_since_last_lesson"] == pytest.approx(10)


def test_an_orders_only_platform_gives_a_full_matrix_without_nan():
    frame = features.build(snapshot(orders=orders_frame()))
    assert list(frame.columns) == features.FEATURES
    assert not frame.isna().any().any()
    assert (frame[["lessons_30", "events_90", "sub_live", "posts_90", "email_30"]] == 0).all().all()


def test_it_counts_event_categories_and_skips_kinds_that_mirror_tables():
    events = pd.DataFrame({
        "member_id": [1, 1, 1, 2], "kind": ["lesson_viewed", "lesson_completed", "email_opened", "post_viewed"],
        "n7": [2, 5, 1, 0], "n30": [4, 5, 2, 3], "n90": [9, 5, 2, 3],
        "last": [ts(1), ts(1), ts(3), ts(20)],
    })
    last = pd.DataFrame({"member_id": [1, 2], "last_event_at": [ts(1), ts(20)]})
    frame = features.build(snapshot(event_counts=events, last_event=last))
    assert frame.loc[1, "learning_30"] == 4  # lesson_completed is read from LessonProgress instead
    assert frame.loc[1, "email_30"] == 2 and frame.loc[1, "events_30"] == 11
    assert frame.loc[2, "community_ev_30"] == 3
    assert frame.loc[2, "days_since_last_event"] == pytest.approx(20)


def test_subscription_state_and_days_to_period_end():
    subs = pd.DataFrame({
        "subscription_id": [1, 2], "member_id": [1, 2], "tier_id": [1, 1], "billing_period": ["month", "year"],
        "status": ["active", "expired"], "started_at": [ts(40), ts(400)], "period_start": [ts(10), ts(400)],
        "period_end": [ts(-20), ts(35)], "trial_end": [pd.NaT, pd.NaT], "canceled_at": [ts(2), ts(50)],
        "ended_at": [pd.NaT, ts(35)], "live": [True, False], "cancel_pending": [True, False],
        "trialing": [False, False],
    })
    frame = features.build(snapshot(subscriptions=subs))
    assert frame.loc[1, "sub_live"] == 1 and frame.loc[1, "sub_days_to_period_end"] == pytest.approx(20)
    assert frame.loc[1, "sub_cancel_pending"] == 1 and frame.loc[1, "tier_price"] == 50
    assert frame.loc[2, "sub_live"] == 0 and frame.loc[2, "sub_days_to_period_end"] == 0 and frame.loc[2, "sub_ever"] == 1


def test_review_features():
    reviews = pd.DataFrame({"member_id": [1, 2], "n_reviews_given": [3, 1], "reviews_30": [1, 0], "reviews_90": [2, 1],
                            "rated": [2, 1], "rating_sum": [6, 5], "low_ratings_given": [1, 0]})
    # Member 1 bought courses 10 and 11 (rated 4.5 and 3.0 on average); member 2 bought 10 only.
    course_ratings = pd.DataFrame({"course_id": [10, 11, 12], "course_avg_rating": [4.5, 3.0, 1.0],
                                   "course_ratings": [2, 1, 1]})
    frame = features.build(snapshot(reviews=reviews, course_ratings=course_ratings, orders=orders_frame()))
    assert frame.loc[1, "n_reviews_given"] == 3 and frame.loc[1, "avg_rating_given"] == 3.0
    assert frame.loc[1, "reviews_30"] == 1 and frame.loc[1, "reviews_90"] == 2
    assert frame.loc[1, "low_ratings_given"] == 1 and frame.loc[2, "avg_rating_given"] == 5.0
    assert frame.loc[1, "avg_rating_of_purchased"] == pytest.approx(3.75)
    assert frame.loc[2, "avg_rating_of_purchased"] == 4.5
    assert frame.loc[3, "n_reviews_given"] == 0 and frame.loc[3, "avg_rating_given"] == 0
    assert frame.loc[3, "avg_rating_of_purchased"] == 0


@pytest.mark.django_db
def test_hidden_reviews_are_not_read():
    course = CourseFactory()
    writer, other = UserFactory(), UserFactory()
    at = AS_OF - timedelta(days=3)
    Review.objects.create(member=writer, course=course, rating=5, created_at=at, updated_at=at)
    Review.objects.create(member=other, course=course, rating=1, created_at=at, updated_at=at, is_hidden=True)
    given = datasets.reviews(AS_OF).set_index("member_id")
    assert list(given.index) == [writer.pk] and given.loc[writer.pk, "n_reviews_given"] == 1
    averages = datasets.course_rating_averages(AS_OF).set_index("course_id")
    assert averages.loc[course.pk, "course_avg_rating"] == 5.0 and averages.loc[course.pk, "course_ratings"] == 1
    assert list(datasets.course_ratings(AS_OF)["member_id"]) == [writer.pk]


@pytest.mark.django_db
def test_a_deleted_members_posts_and_comments_count_for_nobody():
    writer, gone = UserFactory(), UserFactory()
    at = AS_OF - timedelta(days=3)
    post = Post.objects.create(author=gone, title="t", body="b", created_at=at)
    Comment.objects.create(post=post, author=writer, body="c", created_at=at)
    Comment.objects.create(post=post, author=gone, body="c", created_at=at)
    gone.delete()  # SET_NULL: the post and both comments stay, two of them without an author
    frame = datasets.community_activity(AS_OF)
    assert list(frame["member_id"]) == [writer.pk]
    row = frame.set_index("member_id").loc[writer.pk]
    assert row["comments_30"] == 1 and pd.isna(row["posts_30"])


def test_bgnbd_inputs_in_weeks():
    bg = features.bgnbd_inputs(orders_frame(), AS_OF, pd.Index([1, 2, 3]))
    assert bg.loc[1, "x"] == 2 and bg.loc[1, "t_x"] == pytest.approx(90 / 7) and bg.loc[1, "T"] == pytest.approx(100 / 7)
    assert bg.loc[2, "x"] == 0 and bg.loc[3, "buyer"] == 0


@pytest.mark.django_db
def test_subscriptions_are_rebuilt_as_they_stood_at_as_of():
    member = UserFactory(date_joined=AS_OF - timedelta(days=200))
    # Today the subscription has renewed twice past as_of and was later cancelled.
    SubscriptionFactory(
        member=member, tier=TierFactory(), billing_period="month", status=Subscription.Status.CANCELED,
        started_at=AS_OF - timedelta(days=50), current_period_start=AS_OF + timedelta(days=40),
        current_period_end=AS_OF + timedelta(days=70), canceled_at=AS_OF + timedelta(days=45),
    )
    subs = datasets.subscriptions(AS_OF)
    row = subs.iloc[0]
    assert bool(row["live"]) and not bool(row["cancel_pending"]) and pd.isna(row["canceled_at"])
    assert row["period_start"] <= pd.Timestamp(AS_OF) < row["period_end"]


@pytest.mark.django_db
def test_subscription_state_inferred_from_orders_ignores_orders_appended_after_as_of():
    """An orders-only platform (no Subscription rows): the state inferred from tier orders at as_of does not move
    when renewals, new subscribers, a refund of an earlier order and a failed charge are recorded after as_of."""
    from members.models import Order

    platform = make_platform(members=40, days=200, seed=5, orders_only=True)
    as_of = platform.start + timedelta(days=150)
    tier = TierFactory(monthly_price=40, yearly_price=400)
    sub_orders = []
    for n, member_id in enumerate(platform.member_ids[:30]):
        period = "year" if n % 5 == 0 else "month"
        for k in range(n % 4 + 1):  # one to four payments, the last 10 to 100 days before as_of
            when = as_of - timedelta(days=10 + 3 * n + 30 * k)
            sub_orders.append(Order(member_id=member_id, kind=Order.Kind.SUBSCRIPTION, tier=tier, billing_period=period,
                                    list_price=40, amount_paid=40, status=Order.Status.PAID, paid_at=when,
                                    created_at=when))
    Order.objects.bulk_create(sub_orders)
    before_subs = datasets.subscriptions(as_of)
    before = features.build(datasets.snapshot(as_of))
    assert before_subs["inferred"].all() and 0 < before["sub_live"].sum() < 30

    later = as_of + timedelta(hours=1)
    Order.objects.bulk_create(
        [Order(member_id=m, kind=Order.Kind.SUBSCRIPTION, tier=tier, billing_period="year", list_price=400,
               amount_paid=400, status=Order.Status.PAID, paid_at=later, created_at=later)
         for m in platform.member_ids]  # renewals, switches to yearly and first payments alike
        + [Order(member_id=platform.member_ids[1], kind=Order.Kind.SUBSCRIPTION, tier=tier, billing_period="month",
                 list_price=40, amount_paid=40, status=Order.Status.FAILED, created_at=later)]
    )
    Order.objects.filter(pk=sub_orders[0].pk).update(status=Order.Status.REFUNDED, refunded_at=later)
    append_future_history(as_of, platform.member_ids, platform.course_ids)

    assert_frame_equal(datasets.subscriptions(as_of), before_subs)
    assert_frame_equal(features.build(datasets.snapshot(as_of)), before)
    # The test had something to move.
    assert datasets.subscriptions(later + timedelta(hours=1))["live"].sum() == len(platform.member_ids)


@pytest.mark.django_db
def test_features_at_as_of_ignore_history_appended_after_it():
    platform = make_platform(members=60, days=200, seed=3)
    as_of = platform.start + timedelta(days=150)
    before = features.build(datasets.snapshot(as_of))
    append_future_history(as_of, platform.member_ids, platform.course_ids)
    after = features.build(datasets.snapshot(as_of))
    assert_frame_equal(before, after)
    # The test had something to move.
    assert before["lessons_total"].sum() > 0 and before["frequency"].sum() > 0 and before["n_reviews_given"].sum() > 0
    assert before["avg_rating_of_purchased"].sum() > 0 and before["reviews_90"].sum() > 0
    later = features.build(datasets.snapshot(as_of + timedelta(days=2)))
    assert not np.allclose(later.loc[before.index, "frequency"], before["frequency"])


def test_purchase_features_do_not_depend_on_the_order_of_the_rows():
    """purchase_features sorts by member, then time, stably: shuffled rows, or rows already in that order, give the
    same floats (sums in the same order), ties on one timestamp included."""
    rng = np.random.default_rng(5)
    n = 3000
    start = pd.Timestamp("2025-01-01", tz="UTC")
    orders = pd.DataFrame({
        "order_id": np.arange(n), "member_id": rng.integers(1, 200, n),
        "kind": rng.choice(["course", "tier"], n), "course_id": 1.0, "tier_id": np.nan,
        "amount": rng.random(n) * 1000,
        # whole days: many members have two orders at the same instant
        "paid_at": start + pd.to_timedelta(rng.integers(0, 300, n), unit="D"),
        "is_renewal": rng.random(n) < 0.2, "billing_period": "",
    })
    as_of = datetime(2025, 11, 1, tzinfo=UTC)
    in_order = orders.sort_values(["member_id", "paid_at"]).reset_index(drop=True)
    expected = features.purchase_features(in_order, as_of)
    shuffled = orders.sample(frac=1.0, random_state=1).reset_index(drop=True)
    assert_frame_equal(features.purchase_features(shuffled, as_of), expected)
