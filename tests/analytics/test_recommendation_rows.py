"""A member's recommendations of a run are one RecommendationSet row (k courses, best first), written without
model instances and read back exactly; the table has no database-level foreign keys (the nightly write checked them
per row at commit). Deleting a member or a run still removes their rows through Django's on_delete; a course deleted
since the run simply stops being shown."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from django.db import connection

from analytics.models import RecommendationRun, RecommendationSet
from analytics.recommendations.selectors import current_recommendations
from analytics.scoring import services
from members.models import Course, User
from tests.analytics.factories import make_courses, recommendation_set


@pytest.fixture
def rows(db):
    courses = make_courses(per_topic=1)
    members = [User.objects.create_user(email=f"r{i}@example.com", password=None) for i in range(2)]
    run = RecommendationRun.objects.create(as_of="2026-01-01T00:00:00Z", k=2, params={}, metrics={},
                                           baseline_metrics={}, is_current=True)
    for member in members:
        recommendation_set(run=run, member=member, items=[(courses[0], 0.9, "similar_to_purchase", courses[1]),
                                                          (courses[1], 0.5, "popular")])
    return run, members, courses


def test_the_table_has_no_database_foreign_keys(db):
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, RecommendationSet._meta.db_table)
    assert not [name for name, info in constraints.items() if info["foreign_key"]]


def test_deleting_a_member_removes_their_recommendations(rows):
    run, members, _courses = rows
    members[0].delete()
    assert set(RecommendationSet.objects.values_list("member_id", flat=True)) == {members[1].pk}


def test_a_course_deleted_since_the_run_is_no_longer_shown_nor_named_as_a_reason(rows):
    _run, members, courses = rows
    Course.objects.filter(pk=courses[1].pk).delete()
    shown = current_recommendations(member_id=members[0].pk)
    assert [(r.rank, r.course.pk, r.reason, r.reason_course) for r in shown] == [
        (1, courses[0].pk, "similar_to_purchase", None)]


def test_deleting_a_run_removes_its_rows(rows):
    run, _members, _courses = rows
    run.delete()
    assert not RecommendationSet.objects.exists()


def test_the_written_items_read_back_exactly_in_rank_order(db):
    """services._recommendation_items writes the JSON json.dumps would (floats as their repr): every score, code
    and reason course comes back as served, one row per member."""
    members = [User.objects.create_user(email=f"w{i}@example.com", password=None) for i in range(3)]
    run = RecommendationRun.objects.create(as_of="2026-01-01T00:00:00Z", k=3, is_current=True)
    rng = np.random.default_rng(3)
    served = pd.DataFrame({
        "member_id": [members[0].pk] * 3 + [members[2].pk] * 2,
        "rank": [1, 2, 3, 1, 2],
        "course_id": [5, 9, 2, 7, 5],
        "score": rng.random(5).round(6),
        "reason": ["because_you_finished", "popular", "buy_again", "similar_to_purchase", "popular"],
        "reason_course_id": [3.0, np.nan, 2.0, 11.0, np.nan],
    })
    ids, items = services._recommendation_items(served)
    assert ids == [members[0].pk, members[2].pk]
    services._insert_rows(RecommendationSet, ["run", "member", "items"], [(run.pk, m, i) for m, i in zip(ids, items)])
    back = [(stored.member_id, e.rank, e.course_id, e.score, e.reason, e.reason_course_id)
            for stored in RecommendationSet.objects.order_by("member_id") for e in stored.entries()]
    assert back == [(int(m), int(r), int(c), float(s), str(why), None if np.isnan(b) else int(b))
                    for m, r, c, s, why, b in served.itertuples(index=False)]
    assert services._recommendation_items(served.iloc[:0]) == ([], [])


def test_a_score_that_is_not_a_number_or_a_gap_in_the_ranks_is_refused(db):
    served = pd.DataFrame({"member_id": [1, 1], "rank": [1, 2], "course_id": [2, 3], "score": [float("nan"), 0.5],
                           "reason": ["popular"] * 2, "reason_course_id": [np.nan] * 2})
    with pytest.raises(ValueError, match="not a finite number"):
        services._recommendation_items(served)
    served["score"] = [0.9, 0.5]
    assert services._recommendation_items(served)[0] == [1]
    for ranks in ([1, 3], [2, 1]):  # a rank missing, or out of order: the stored position would not be the rank
        with pytest.raises(ValueError, match="ranked 1, 2, 3"):
            services._recommendation_items(served.assign(rank=ranks))
