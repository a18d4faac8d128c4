"""The nightly rows (engagement scores, segment assignments, propensity scores) have no database-level foreign keys
(PostgreSQL checked each per row at commit: 1.6 s of a 21 s night at 100k members); deleting what they point at
still removes them, through Django's on_delete."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection

from analytics.models import EngagementScore, ModelVersion, PropensityScore, SegmentAssignment, SegmentRun
from members.models import User

AS_OF = datetime(2026, 1, 1, tzinfo=UTC)
NIGHTLY = (EngagementScore, SegmentAssignment, PropensityScore)


@pytest.fixture
def rows(db):
    members = [User.objects.create_user(email=f"n{i}@example.com", password=None) for i in range(2)]
    run = SegmentRun.objects.create(as_of=AS_OF, k=1, labels={"0": "All members"})
    version = ModelVersion.objects.create(as_of=AS_OF, horizon_days=30, algorithm="rule")
    for member in members:
        EngagementScore.objects.create(member=member, as_of=AS_OF, score=50.0)
        SegmentAssignment.objects.create(run=run, member=member, as_of=AS_OF, cluster=0, label="All members")
        PropensityScore.objects.create(member=member, model_version=version, as_of=AS_OF, probability=0.5)
    return members, run, version


def test_the_nightly_tables_have_no_database_foreign_keys(db):
    with connection.cursor() as cursor:
        for model in NIGHTLY:
            constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
            assert not [name for name, info in constraints.items() if info["foreign_key"]], model.__name__
    # The check can see one: the members' orders keep theirs.
    from members.models import Order

    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Order._meta.db_table)
    assert [name for name, info in constraints.items() if info["foreign_key"]]


def test_deleting_a_member_removes_their_nightly_rows(rows):
    members, _run, _version = rows
    members[0].delete()
    for model in NIGHTLY:
        assert set(model.objects.values_list("member_id", flat=True)) == {members[1].pk}, model.__name__


def test_deleting_a_segment_run_or_a_model_version_removes_its_rows(rows):
    _members, run, version = rows
    run.delete()
    assert not SegmentAssignment.objects.exists() and EngagementScore.objects.count() == 2
    version.delete()
    assert not PropensityScore.objects.exists()


def test_a_rerun_stage_replaces_its_rows_in_one_delete_without_loading_them(db, monkeypatch, settings,
                                                                            django_capture_on_commit_callbacks):
    """A night re-run (or a chunk task delivered twice) deletes the rows it writes again with one DELETE:
    QuerySet.delete() fetched every one of them as an object first (≈ 9 s at 100k members on PostgreSQL)."""
    from analytics.models import RecommendationRun, RecommendationSet
    from analytics.scoring import services
    from members import pagecache
    from tests.analytics.factories import make_platform

    as_of = make_platform(members=40, days=200, seed=5).end
    services.nightly_pipeline(as_of=as_of)
    version = ModelVersion.objects.get(is_serving=True)
    run = RecommendationRun.objects.get(is_current=True)
    before = {
        EngagementScore: sorted(EngagementScore.objects.filter(as_of=as_of).values_list("member_id", "score")),
        PropensityScore: sorted(PropensityScore.objects.filter(as_of=as_of).values_list("member_id", "probability")),
        RecommendationSet: sorted(run.sets.values_list("member_id", "items")),
    }
    assert all(before.values())

    def loaded(cls, *args, **kwargs):
        raise AssertionError(f"{cls.__name__} rows loaded to be deleted")

    for model in before:
        monkeypatch.setattr(model, "from_db", classmethod(loaded))
    bumps = []
    monkeypatch.setattr(pagecache, "bump", lambda member_id=None: bumps.append(member_id))
    with django_capture_on_commit_callbacks(execute=True):
        services.engagement_compute(as_of=as_of)
        services.propensity_score(as_of=as_of, version=version)
        services.recommendations_chunk(run=run)  # the current run's one chunk, delivered again
    monkeypatch.undo()
    assert sorted(EngagementScore.objects.filter(as_of=as_of).values_list("member_id", "score")) == before[
        EngagementScore]
    assert sorted(PropensityScore.objects.filter(as_of=as_of).values_list("member_id", "probability")) == before[
        PropensityScore]
    assert sorted(run.sets.values_list("member_id", "items")) == before[RecommendationSet]
    assert bumps == [None]  # learners see that run: their cached pages are dropped once
