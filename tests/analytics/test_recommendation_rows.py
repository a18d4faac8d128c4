"""Recommendation rows have no database-level foreign keys (the nightly write of 10 × members rows checked four per
row at commit); deleting what they point at still removes or clears them, through Django's on_delete."""
from __future__ import annotations

import pytest

from analytics.models import Recommendation, RecommendationRun
from members.models import Course, User
from tests.analytics.factories import make_courses


@pytest.fixture
def rows(db):
    courses = make_courses(per_topic=1)
    members = [User.objects.create_user(email=f"r{i}@example.com", password=None) for i in range(2)]
    run = RecommendationRun.objects.create(as_of="2026-01-01T00:00:00Z", k=2, params={}, metrics={},
                                           baseline_metrics={}, is_current=True)
    for member in members:
        Recommendation.objects.create(run=run, member=member, course=courses[0], rank=1, score=0.9,
                                      reason="similar_to_purchase", reason_course=courses[1])
        Recommendation.objects.create(run=run, member=member, course=courses[1], rank=2, score=0.5, reason="popular")
    return run, members, courses


def test_deleting_a_member_removes_their_recommendations(rows):
    run, members, _courses = rows
    members[0].delete()
    assert set(Recommendation.objects.values_list("member_id", flat=True)) == {members[1].pk}


def test_deleting_a_course_removes_its_rows_and_clears_it_as_a_reason(rows):
    _run, _members, courses = rows
    Course.objects.filter(pk=courses[1].pk).delete()
    left = list(Recommendation.objects.values_list("course_id", "reason_course_id"))
    assert left == [(courses[0].pk, None), (courses[0].pk, None)]


def test_deleting_a_run_removes_its_rows(rows):
    run, _members, _courses = rows
    run.delete()
    assert not Recommendation.objects.exists()
