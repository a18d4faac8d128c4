from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from analytics import selectors
from analytics.ml import recommendations
from analytics.models import Event, RecommendationRun
from analytics.recommendations.selectors import current_recommendations
from analytics.scoring import services
from members.models import Enrollment, Subscription
from tests.analytics.factories import append_future_history, make_platform, run_rows
from tests.members.factories import UserFactory

AS_OF = datetime(2025, 6, 1, tzinfo=UTC)


def catalogue() -> pd.DataFrame:
    return pd.DataFrame({
        "course_id": [1, 2, 3, 4], "external_id": [None] * 4, "slug": ["a", "b", "c", "d"],
        "title": ["Python basics", "Advanced Python", "", ""],
        "title_zh": ["", "", "中国书法入门", "中国书法进阶"],
        "summary": ["", "", "", ""], "description": ["", "", "", ""], "tags": [["python"], ["python"], [], []],
        "topic": ["", "", "", ""], "price": [1, 1, 1, 1],
    })


def test_content_similarity_works_for_chinese_titles():
    sim = recommendations.content_similarity(catalogue())
    assert sim[2, 3] > sim[2, 0] and sim[2, 3] > 0.3   # the two calligraphy courses, by character n-grams
    assert sim[0, 1] > sim[0, 2]


def interactions(rows: list[tuple[int, int, bool]]) -> pd.DataFrame:
    return pd.DataFrame({"member_id": [r[0] for r in rows], "course_id": [r[1] for r in rows],
                         "at": pd.Timestamp(AS_OF - timedelta(days=5)), "completed": [r[2] for r in rows]})


def test_it_never_recommends_what_a_member_owns_and_says_why():
    history = interactions([(10, 1, True), (10, 2, False), (11, 1, False), (11, 2, False), (12, 3, False),
                            (13, 3, False), (13, 4, False), (14, 1, True)])
    model = recommendations.fit(catalogue(), history, AS_OF)
    recs = recommendations.recommend(model, history, [10, 11, 12, 13, 14, 99], k=3, blocked={13})
    owned = set(zip(history["member_id"], history["course_id"]))
    assert not any((m, c) in owned for m, c in zip(recs["member_id"], recs["course_id"]))
    assert 13 not in set(recs["member_id"])                       # all-course access: nothing to sell
    top14 = recs[recs["member_id"] == 14].iloc[0]
    assert top14["course_id"] == 2 and top14["reason"] == "because_you_finished"
    assert top14["reason_course_id"] == 1 and "reason_text" not in recs.columns  # a code, no stored words
    top12 = recs[recs["member_id"] == 12].iloc[0]
    assert top12["course_id"] == 4 and top12["reason"] == "similar_to_purchase"
    assert set(recs[recs["member_id"] == 99]["reason"]) == {"popular"}  # cold start
    assert list(recs[recs["member_id"] == 99]["rank"]) == [1, 2, 3]


def test_members_who_rated_a_course_highly_also_liked():
    # Members 20–22 rated 1 and 3 highly; 23 rated 1 and 4 low; 24 has 1 and 2 and rated 1 highly.
    history = interactions([(20, 1, False), (20, 3, False), (21, 1, False), (21, 3, False), (22, 1, False),
                            (22, 3, False), (23, 1, False), (23, 4, False), (24, 1, False), (24, 2, False)])
    ratings = pd.DataFrame({"member_id": [20, 20, 21, 21, 22, 22, 23, 23, 24],
                            "course_id": [1, 3, 1, 3, 1, 3, 1, 4, 1], "rating": [5, 4, 5, 5, 4, 5, 2, 2, 5]})
    model = recommendations.fit(catalogue(), history, AS_OF, ratings=ratings, w_rated=2.0)
    assert model.sim_rated[0, 2] > 0 and model.sim_rated[0, 3] == 0   # low ratings are not "liked"
    recs = recommendations.recommend(model, history, [24], k=2, ratings=ratings)
    top = recs.iloc[0]
    assert top["course_id"] == 3 and top["reason"] == "rated_highly_also_liked"
    assert top["reason_course_id"] == 1
    # Without the member's own ratings (or with no weight) the signal is silent.
    plain = recommendations.recommend(model, history, [24], k=2)
    assert "rated_highly_also_liked" not in set(plain["reason"])
    quiet = recommendations.fit(catalogue(), history, AS_OF, ratings=ratings, w_rated=0.0)
    assert "rated_highly_also_liked" not in set(recommendations.recommend(quiet, history, [24], k=2,
                                                                          ratings=ratings)["reason"])


def test_offline_metrics_by_hand():
    recs = pd.DataFrame({"member_id": [1, 1, 2, 2], "rank": [1, 2, 1, 2], "course_id": [5, 6, 7, 8]})
    truth = pd.DataFrame({"member_id": [1, 2, 2], "course_id": [6, 9, 10]})
    m = recommendations.offline_metrics(recs, truth, k=2, catalogue_size=8)
    assert m["precision"] == 0.25 and m["recall"] == 0.5
    assert m["ndcg"] == pytest.approx(((1 / np.log2(3)) / 1.0 + 0) / 2, abs=1e-4)
    assert m["coverage"] == 0.5 and m["users"] == 2


@pytest.fixture
def platform(db):
    return make_platform(members=150, days=300, seed=21)


def test_ours_beats_popularity_on_a_time_split(platform):
    as_of = platform.end
    result = services.recommendations_evaluate(as_of=as_of, horizon_days=60, k=3)
    assert result["ours"]["users"] > 10
    assert result["ours"]["ndcg"] > result["popularity"]["ndcg"]
    assert result["ours"]["hit"] >= result["popularity"]["hit"]


def test_a_run_is_stored_made_current_and_ignores_the_future(platform):
    as_of = platform.end - timedelta(days=30)
    first = services.recommendations_compute(as_of=as_of, k=3)
    assert first.is_current and "ndcg" in first.metrics
    assert first.baseline_metrics and all("ndcg" in peer for peer in first.baseline_metrics.values())
    rows = run_rows(first, "member_id", "rank", "course_id", "reason")
    assert rows
    owned = set(Enrollment.objects.filter(enrolled_at__lt=as_of).values_list("member_id", "course_id"))
    assert not any((m, c) in owned for m, _, c, _ in rows)
    subscribers = set(Subscription.objects.filter(started_at__lt=as_of, ended_at__isnull=True)
                      .values_list("member_id", flat=True))
    assert subscribers and not subscribers & {m for m, *_ in rows}
    sim_cf = services.recommendation_model(as_of).items.sim_cf
    assert sim_cf.sum() > 0  # purchases known at as_of fed the model

    append_future_history(as_of, platform.member_ids, platform.course_ids)
    assert np.array_equal(services.recommendation_model(as_of).items.sim_cf, sim_cf)
    second = services.recommendations_compute(as_of=as_of, k=3)
    first.refresh_from_db()
    assert second.is_current and not first.is_current
    assert run_rows(second, "member_id", "rank", "course_id", "reason") == rows
    assert second.metrics == first.metrics
    assert current_recommendations(member_id=rows[0][0])[0].run_id == second.pk


def test_an_imported_catalogue_counts_from_its_first_sale(db):
    from analytics.ml import datasets
    from tests.members.factories import CourseFactory, OrderFactory

    now = AS_OF + timedelta(days=200)  # imported today: created_at is after the history it comes with
    sold = CourseFactory(created_at=now, published_at=None)
    unsold = CourseFactory(created_at=now, published_at=None)
    announced = CourseFactory(created_at=now, published_at=AS_OF - timedelta(days=1))
    OrderFactory(course=sold, paid_at=AS_OF - timedelta(days=30), created_at=AS_OF - timedelta(days=30))
    OrderFactory(course=unsold, paid_at=AS_OF + timedelta(days=1))
    ids = set(datasets.courses(AS_OF)["course_id"])
    assert ids == {sold.pk, announced.pk}


def test_online_funnel_from_events(db):
    alice, bob = UserFactory(), UserFactory()
    t = AS_OF
    Event.objects.bulk_create([
        Event(member=alice, kind="recommendation_impression", object_id="7", occurred_at=t),
        Event(member=alice, kind="recommendation_impression", object_id="8", occurred_at=t),
        Event(member=bob, kind="recommendation_impression", object_id="7", occurred_at=t),
        Event(member=alice, kind="recommendation_click", object_id="7", occurred_at=t + timedelta(minutes=1)),
        Event(member=bob, kind="recommendation_click", object_id="7", occurred_at=t + timedelta(minutes=2)),
        Event(member=alice, kind="course_purchased", object_id="7", occurred_at=t + timedelta(hours=1)),
        Event(member=bob, kind="course_purchased", object_id="7", occurred_at=t + timedelta(days=30)),  # too late
        Event(member=bob, kind="course_purchased", object_id="8", occurred_at=t + timedelta(hours=1)),  # not clicked
    ])
    funnel = selectors.recommendation_funnel(start=t, end=t + timedelta(days=1))
    assert (funnel.impressions, funnel.clicks, funnel.purchases) == (3, 2, 1)
    assert funnel.click_through_rate == pytest.approx(2 / 3) and funnel.purchase_rate == 0.5
    assert RecommendationRun.objects.count() == 0


def test_catalogue_frames_keep_their_columns_for_translated_models(db):
    # modeltranslation's querysets select columns in their own order; the datasets' raw-SQL shortcut must not
    # misalign them (a tier's price was read as its id, so all-course members were recommended courses).
    from analytics.ml import datasets
    from members.models import Benefit, MembershipTier

    tier = MembershipTier.objects.create(name="All", slug="all", monthly_price=50, yearly_price=500, order=3)
    Benefit.objects.create(tier=tier, kind=Benefit.Kind.ALL_COURSES)
    frame = datasets.tiers(datetime.now(UTC))
    assert frame.to_dict("records") == [
        {"tier_id": tier.pk, "monthly_price": 50.0, "order": 3, "all_courses": True}
    ]
def test_owned_items_are_offered_again_only_when_someone_bought_them_again():
    from datetime import UTC, datetime

    import pandas as pd

    from analytics.ml import recommendations as recs

    as_of = datetime(2025, 6, 1, tzinfo=UTC)
    courses = pd.DataFrame({"course_id": [1, 2, 3], "external_id": ["a", "b", "c"], "slug": ["a", "b", "c"],
                            "title": ["Tea", "Cups", "Course"], "title_zh": "", "summary": "", "description": "",
                            "tags": [[], [], []], "topic": "", "price": 1})
    day = pd.Timedelta(days=1)
    ts = pd.Timestamp(as_of)
    # Member 1 bought item 1 on two days (a consumable); item 3 was only ever bought once per member.
    events = pd.DataFrame({"member_id": [1, 1, 2, 2, 3], "course_id": [1, 1, 3, 1, 3],
                           "at": [ts - 40 * day, ts - 10 * day, ts - 5 * day, ts - 3 * day, ts - 2 * day]})
    interactions = events.groupby(["member_id", "course_id"], as_index=False).agg(at=("at", "max")).assign(
        completed=False)
    model = recs.fit(courses, interactions, as_of, events=events)
    assert model.rebuyable.tolist() == [True, False, False]
    out = recs.recommend(model, interactions[interactions["member_id"] == 2], [2], k=3)
    assert 3 not in set(out["course_id"])  # owned, never re-bought by anyone: excluded
    again = out[out["course_id"] == 1].iloc[0]
    assert again["reason"] == "buy_again" and again["reason_course_id"] == 1
    # Without repeat purchases in the history, owned items are never recommended (the course-platform rule).
    plain = recs.fit(courses, interactions, as_of)
    assert not {1, 3} & set(recs.recommend(plain, interactions[interactions["member_id"] == 2], [2], k=3)["course_id"])


def _row(*courses, run_id=3):
    return [(("course", pk), {"rank": rank, "source": "model", "run_id": run_id}) for rank, pk in enumerate(courses, 1)]


def test_row_impressions_once_per_member_card_set_and_window(db, settings, django_capture_on_commit_callbacks):
    """record_row_impressions: the same cards for the same member inside the window record nothing; other cards,
    another member, or the window passed record again. The marker holds the card set's digest for the window."""
    from analytics.recommendations import impressions
    from members import pagecache

    settings.RECOMMENDATION_IMPRESSION_WINDOW_SECONDS = 600
    alice, bob = UserFactory(), UserFactory()
    shown = Event.objects.filter(kind="recommendation_impression")

    def show(member, row):
        seen = pagecache.state().get(impressions.marker_key(member.pk))
        with django_capture_on_commit_callbacks(execute=True):
            return impressions.record_row_impressions(member=member, impressions=row, seen=seen)

    digest = show(alice, _row(7, 8))
    assert digest == impressions.card_set_digest(_row(7, 8)) and shown.count() == 2
    assert show(alice, _row(7, 8)) == digest and shown.count() == 2  # same cards, same window
    show(bob, _row(7, 8))
    assert shown.filter(member=bob).count() == 2  # each member their own marker
    show(alice, _row(8, 7))  # the same courses at other ranks are another card set
    show(alice, _row(8, 7, run_id=4))  # and so are the same cards of another run
    assert shown.filter(member=alice).count() == 6
    pagecache.state().delete(impressions.marker_key(alice.pk))  # the window over
    show(alice, _row(8, 7, run_id=4))
    assert shown.filter(member=alice).count() == 8
    assert show(alice, []) is None and shown.filter(member=alice).count() == 8


def test_row_impressions_without_a_window_record_every_render(db, settings, django_capture_on_commit_callbacks):
    from analytics.recommendations import impressions
    from members import pagecache

    settings.RECOMMENDATION_IMPRESSION_WINDOW_SECONDS = 0
    alice = UserFactory()
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            assert impressions.record_row_impressions(member=alice, impressions=_row(7, 8), seen=None) is None
    assert Event.objects.filter(member=alice, kind="recommendation_impression").count() == 6
    assert pagecache.state().get(impressions.marker_key(alice.pk)) is None


def test_row_impressions_two_workers_racing_for_the_first_render_record_once(
    db, settings, django_capture_on_commit_callbacks
):
    """Both read no marker; the first to `add` it records, the second finds the same card set and records nothing."""
    from analytics.recommendations import impressions

    settings.RECOMMENDATION_IMPRESSION_WINDOW_SECONDS = 600
    alice = UserFactory()
    with django_capture_on_commit_callbacks(execute=True):
        impressions.record_row_impressions(member=alice, impressions=_row(7, 8), seen=None)
        impressions.record_row_impressions(member=alice, impressions=_row(7, 8), seen=None)
    assert Event.objects.filter(member=alice, kind="recommendation_impression").count() == 2
