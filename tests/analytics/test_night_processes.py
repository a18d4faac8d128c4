"""`run_nightly_pipeline --jobs N`: the inline command runs a night as the worker does, its dispatched parts in
forked processes (analytics/scoring/processes.py), and writes what one process writes."""
from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from analytics.models import JobRun, PropensityScore, RecommendationRun, RecommendationSet
from analytics.scoring import processes, services
from tests.analytics.factories import make_platform


def _night(as_of, jobs: int) -> tuple[dict, dict, RecommendationRun]:
    err = StringIO()
    call_command("run_nightly_pipeline", "--as-of", as_of.isoformat(), "--jobs", str(jobs), stdout=StringIO(),
                 stderr=err)
    run = RecommendationRun.objects.filter(is_current=True).get()
    scores = {s.member_id: (s.probability, json.dumps(s.top_reasons, sort_keys=True))
              for s in PropensityScore.objects.filter(as_of=as_of)}
    sets = {s.member_id: json.dumps(s.items) for s in RecommendationSet.objects.filter(run=run)}
    return scores, sets, run


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_processes_write_the_scores_and_recommendations_one_process_writes(settings):
    platform = make_platform(members=150, days=260, seed=17)
    settings.ANALYTICS_CHUNK_SIZE = 50  # three chunks of 50; four of 38 or 37 for two processes
    as_of = platform.end
    alone_scores, alone_sets, alone_run = _night(as_of, jobs=1)
    assert "shared_reads" not in alone_run.params  # one process: nothing handed between processes
    first = JobRun.objects.order_by("-pk").values_list("pk", flat=True).first()

    assert alone_run.params["chunks"] == 3  # one process: no multiple to round to
    scores, sets, run = _night(as_of, jobs=2)
    assert run.pk != alone_run.pk and run.params["chunks"] == 4
    # Fanned out: the recommendation side read the orders and enrolments for the serial part, as in a worker.
    assert "shared_reads" in run.params
    assert JobRun.objects.filter(pk__gt=first, job="share_reads", status=JobRun.Status.SUCCEEDED).count() == 1
    assert JobRun.objects.filter(pk__gt=first, job="score_members").count() == 4
    assert JobRun.objects.filter(pk__gt=first, job="recommend").count() == 4
    assert not JobRun.objects.filter(pk__gt=first).exclude(status=JobRun.Status.SUCCEEDED).exists()
    assert scores == alone_scores and len(scores) == 150
    assert sets == alone_sets and sets


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_part_that_fails_in_another_process_fails_the_command(settings, monkeypatch):
    platform = make_platform(members=90, days=260, seed=19)
    settings.ANALYTICS_CHUNK_SIZE = 30
    real = services.night_part

    def failing(kind, **kwargs):
        if kind == "prepare_recommendations":
            raise RuntimeError("the recommender could not be fitted")
        return real(kind, **kwargs)

    monkeypatch.setattr(services, "night_part", failing)  # forked processes inherit it
    with pytest.raises(RuntimeError, match="could not be fitted"):
        call_command("run_nightly_pipeline", "--as-of", platform.end.isoformat(), "--jobs", "2",
                     stdout=StringIO(), stderr=StringIO())
    assert not RecommendationRun.objects.filter(is_current=True).exists()


def test_where_another_process_would_not_see_the_rows_the_night_runs_in_one(db, settings):
    """The tests' SQLite database is in memory (and every test here runs inside a transaction): --jobs says why it
    runs in one process, and the night completes."""
    platform = make_platform(members=60, days=260, seed=23)
    settings.ANALYTICS_CHUNK_SIZE = 30
    assert processes.processes_usable() is not None
    err = StringIO()
    call_command("run_nightly_pipeline", "--as-of", platform.end.isoformat(), "--jobs", "2", stdout=StringIO(),
                 stderr=err)
    assert "--jobs 2: running in one process (" in err.getvalue()
    assert RecommendationRun.objects.filter(is_current=True).count() == 1
    assert PropensityScore.objects.filter(as_of=platform.end).count() == 60


def test_jobs_must_be_at_least_one(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--jobs"):
        call_command("run_nightly_pipeline", "--jobs", "0", stdout=StringIO(), stderr=StringIO())


def test_the_command_starts_without_django_system_checks(db, monkeypatch):
    """Cron's nightly command, like the worker's task, does not pay for the system checks (every URLconf imported,
    0.9 s); `check --deploy` runs them at deploy. A command that keeps them still runs them here."""
    from django.core.management import load_command_class
    from django.core.management.base import BaseCommand, CommandError

    checked: list[str] = []
    monkeypatch.setattr(BaseCommand, "check", lambda self, *args, **kwargs: checked.append(type(self).__module__))
    options = {"skip_checks": False, "stdout": StringIO(), "stderr": StringIO(), "no_color": True,
               "force_color": False}
    nightly = load_command_class("analytics", "run_nightly_pipeline")
    with pytest.raises(CommandError, match="--jobs"):
        nightly.execute(jobs=0, as_of=None, horizon_days=services.DEFAULT_HORIZON_DAYS, **options)
    assert checked == []
    load_command_class("analytics", "compute_engagement").execute(as_of="2026-01-01", **options)
    assert checked == ["analytics.management.commands.compute_engagement"]
