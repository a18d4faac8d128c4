"""Superseded recommendation runs lose their rows after RECOMMENDATION_ROWS_KEEP_DAYS; runs keep their metrics,
and the current run and recent ones keep everything."""
from __future__ import annotations

from datetime import timedelta

import pytest

from analytics.models import JobRun, RecommendationRun, RecommendationSet
from analytics.scoring import services, tasks
from tests.analytics.factories import make_platform


@pytest.fixture
def platform(db):
    return make_platform(members=60, days=240, seed=5)


def _night(as_of) -> RecommendationRun:
    run = services.recommendations_start(as_of=as_of, k=4)
    services.recommendations_chunk(run=run)
    run.refresh_from_db()
    return run


def test_rows_of_superseded_runs_older_than_the_window_are_deleted_in_slices(platform, settings):
    settings.RECOMMENDATION_ROWS_KEEP_DAYS = 14
    end = platform.end
    old, older_kept, recent, current = (_night(end - timedelta(days=d)) for d in (20, 14, 3, 0))
    counts = {run.pk: run.sets.count() for run in (old, older_kept, recent, current)}
    assert all(counts.values()) and RecommendationRun.objects.get(is_current=True) == current

    deleted = tasks.prune_recommendation_rows_task.delay().get()
    assert deleted == counts[old.pk]
    assert not old.sets.exists()
    for run in (older_kept, recent, current):  # exactly 14 days before the newest is still kept
        assert run.sets.count() == counts[run.pk]
    assert RecommendationRun.objects.filter(pk=old.pk, metrics=old.metrics).exists()  # the metrics stay
    assert JobRun.objects.get(job="prune_recommendations").rows == deleted
    assert services.prune_recommendation_rows() == 0  # nothing left to do


def test_small_slices_delete_the_same_rows_and_the_current_run_is_never_pruned(platform):
    end = platform.end
    old = _night(end - timedelta(days=30))
    newer = _night(end - timedelta(days=1))
    # As if a backfill had made the old run current again.
    RecommendationRun.objects.filter(pk=newer.pk).update(is_current=False)
    RecommendationRun.objects.filter(pk=old.pk).update(is_current=True)
    before = RecommendationSet.objects.count()
    assert services.prune_recommendation_rows(keep_days=7, batch=7) == 0  # the only stale run is current
    assert RecommendationSet.objects.count() == before
    RecommendationRun.objects.filter(pk=old.pk).update(is_current=False)
    rows = old.sets.count()
    assert rows > 7 and services.prune_recommendation_rows(keep_days=7, batch=7) == rows
    assert RecommendationSet.objects.count() == before - rows


def test_the_prune_deletes_recommender_files_of_runs_that_never_completed(platform, settings, tmp_path):
    import os
    import time

    settings.ARTIFACTS_DIR = str(tmp_path)
    folder = tmp_path / "recommendations"
    folder.mkdir()
    stale, fresh, other = folder / "run-old.joblib", folder / "run-new.joblib", folder / "notes.txt"
    stale_reads = folder / "run-old-reads.pickle"
    for path in (stale, fresh, other, stale_reads):
        path.write_bytes(b"x")
    two_days_ago = time.time() - 2 * 86400
    for path in (stale, other, stale_reads):
        os.utime(path, (two_days_ago, two_days_ago))
    services.prune_recommendation_rows()
    assert not stale.exists() and not stale_reads.exists() and fresh.exists() and other.exists()
    assert "2 recommender, feature-matrix and read files" in JobRun.objects.get(job="prune_recommendations").message
