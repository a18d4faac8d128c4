"""Migration 0016 carries the current run's per-course rows over into one RecommendationSet per member, in rank
order (superseded runs' rows are not carried), and its reverse writes them back."""
from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = ("analytics", "0015_nightly_rows_without_database_foreign_keys")
AFTER = ("analytics", "0016_recommendation_sets_one_row_per_member")


def _migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])
    return executor.loader.project_state([target]).apps


@pytest.mark.django_db(transaction=True)
def test_the_current_runs_rows_become_one_set_per_member_and_back():
    apps = _migrate(BEFORE)
    User = apps.get_model("members", "User")
    Course = apps.get_model("members", "Course")
    Run = apps.get_model("analytics", "RecommendationRun")
    Recommendation = apps.get_model("analytics", "Recommendation")
    alice, bob = (User.objects.create(email=f"{name}@example.com") for name in ("alice", "bob"))
    first, second, third = (Course.objects.create(title=t, slug=t) for t in ("first", "second", "third"))
    old = Run.objects.create(as_of="2026-01-01T00:00:00Z", is_current=False)
    current = Run.objects.create(as_of="2026-01-02T00:00:00Z", is_current=True)
    Recommendation.objects.create(run=old, member=alice, course=third, rank=1, score=0.7, reason="popular")
    # Written out of rank order: the set is in rank order.
    Recommendation.objects.create(run=current, member=alice, course=second, rank=2, score=0.25, reason="popular")
    Recommendation.objects.create(run=current, member=alice, course=first, rank=1, score=0.123456,
                                  reason="similar_to_purchase", reason_course=third)
    Recommendation.objects.create(run=current, member=bob, course=third, rank=1, score=0.5, reason="buy_again",
                                  reason_course=third)

    apps = _migrate(AFTER)
    Set = apps.get_model("analytics", "RecommendationSet")
    assert sorted(Set.objects.values_list("run_id", "member_id", "items")) == [
        (current.pk, alice.pk, [[first.pk, 0.123456, "similar_to_purchase", third.pk], [second.pk, 0.25, "popular", None]]),
        (current.pk, bob.pk, [[third.pk, 0.5, "buy_again", third.pk]]),
    ]

    apps = _migrate(BEFORE)
    Recommendation = apps.get_model("analytics", "Recommendation")
    assert sorted(Recommendation.objects.values_list("run_id", "member_id", "rank", "course_id", "score", "reason",
                                                     "reason_course_id")) == [
        (current.pk, alice.pk, 1, first.pk, 0.123456, "similar_to_purchase", third.pk),
        (current.pk, alice.pk, 2, second.pk, 0.25, "popular", None),
        (current.pk, bob.pk, 1, third.pk, 0.5, "buy_again", third.pk),
    ]
    _migrate(AFTER)
