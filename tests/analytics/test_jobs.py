from __future__ import annotations

import csv
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from analytics.ml import datasets, features
from analytics.models import (
    EngagementScore,
    JobRun,
    ModelVersion,
    PropensityScore,
    RecommendationRun,
    SegmentRun,
)
from analytics.scoring import services, tasks
from members.models import User
from tests.analytics.factories import make_platform, run_rows


@pytest.fixture
def platform(db):
    return make_platform(members=90, days=260, seed=13)


def test_a_failing_job_records_failed_with_the_error_and_writes_nothing(platform, monkeypatch):
    as_of = platform.end
    def boom(_snap):
        raise RuntimeError("feature store exploded")
    monkeypatch.setattr(features, "build", boom)
    with pytest.raises(RuntimeError):
        services.engagement_compute(as_of=as_of)
    run = JobRun.objects.get(job="compute_engagement")
    assert run.status == JobRun.Status.FAILED and "feature store exploded" in run.error
    assert run.finished_at is not None and run.as_of == as_of
    assert not EngagementScore.objects.exists()


def test_the_nightly_task_runs_every_stage_in_chunks(platform, settings):
    settings.ANALYTICS_CHUNK_SIZE = 40  # 90 members → 3 id ranges, each its own chunk task (eager here)
    settings.ANALYTICS_NIGHT_PROCESSES = 1  # three ranges, not rounded up to a multiple of two processes
    as_of = platform.end
    result = tasks.run_nightly_pipeline.delay(as_of.isoformat()).get()
    assert result["chunks"] == 3
    assert EngagementScore.objects.filter(as_of=as_of).count() == 90
    assert SegmentRun.objects.filter(as_of=as_of).count() == 1
    version = ModelVersion.objects.get(is_serving=True)  # none was serving, so one was trained and promoted
    assert PropensityScore.objects.filter(as_of=as_of, model_version=version).count() == 90
    run = RecommendationRun.objects.get()
    assert run.is_current and run.params["chunks"] == 3
    jobs = JobRun.objects.values_list("job", "status")
    assert ("nightly_pipeline", "succeeded") in jobs
    assert sum(1 for j, s in jobs if j == "score_members" and s == "succeeded") == 3
    assert sum(1 for j, s in jobs if j == "recommend" and s == "succeeded") == 3
    assert not JobRun.objects.filter(status=JobRun.Status.FAILED).exists()

    # Safe to run twice: same rows, no duplicates, the new recommendation run replaces the old as current.
    tasks.run_nightly_pipeline.delay(as_of.isoformat()).get()
    assert EngagementScore.objects.filter(as_of=as_of).count() == 90
    assert PropensityScore.objects.filter(as_of=as_of, model_version=version).count() == 90
    assert RecommendationRun.objects.filter(is_current=True).count() == 1


def test_chunks_of_one_run_fit_the_recommender_once_and_match_an_unchunked_run(platform, settings, monkeypatch):
    as_of = platform.end
    fits = []
    real = services.recommendation_model
    monkeypatch.setattr(services, "recommendation_model", lambda when, *args: fits.append(when) or real(when, *args))
    chunked = services.recommendations_start(as_of=as_of, k=5, chunks=3)
    evaluation_fits = len(fits)  # the offline evaluation fits its own model at as_of − horizon
    for id_from, id_to in services.member_chunks(size=40, processes=1):
        services.recommendations_chunk(run=chunked, id_from=id_from, id_to=id_to)
    assert fits[evaluation_fits:] == [as_of]  # three chunks, one fit
    chunked.refresh_from_db()
    assert chunked.is_current and not services._run_model  # released once the run is complete

    whole = services.recommendations_start(as_of=as_of, k=5, chunks=1)
    services.recommendations_chunk(run=whole)
    def rows(run):
        return run_rows(run, "member_id", "course_id", "score")
    assert rows(chunked) == rows(whole) and len(rows(whole)) > 0


def test_the_weekly_training_task_stores_a_version(platform):
    pk = tasks.train_repurchase_model_task.delay(platform.end.isoformat(), 30).get()
    assert ModelVersion.objects.get(pk=pk).metrics["roc_auc"] > 0


def test_commands_print_the_tables_and_write_the_csv_contract(platform, tmp_path):
    User.objects.filter(pk=platform.member_ids[0]).update(external_id="ext-001")
    day = (platform.end - timedelta(days=1)).date().isoformat()
    out = StringIO()
    call_command("train_repurchase_model", "--as-of", day, "--horizon-days", "30", stdout=out)
    text = out.getvalue()
    assert "baseline: rfm_logistic" in text and "baseline: bgnbd" in text and "roc_auc" in text and "95% CI" in text

    scores = tmp_path / "scores.csv"
    call_command("score_members", "--as-of", day, "--out", str(scores), stdout=StringIO())
    with scores.open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["member_id", "repurchase_probability", "engagement_score", "segment", "top_reasons"]
    assert len(rows) == 90 and rows[0]["member_id"] == "ext-001"
    assert all(0 <= float(r["repurchase_probability"]) <= 1 and r["segment"] and r["top_reasons"] for r in rows)

    recs = tmp_path / "recs.csv"
    call_command("recommend", "--as-of", day, "--k", "3", "--out", str(recs), stdout=StringIO())
    with recs.open() as fh:
        rec_rows = list(csv.DictReader(fh))
    assert list(rec_rows[0]) == ["member_id", "rank", "product_id", "score", "reason"]
    assert {r["rank"] for r in rec_rows} <= {"1", "2", "3"}
    assert {r["reason"] for r in rec_rows} <= {"because_you_finished", "similar_to_purchase", "popular", "buy_again",
                                               "rated_highly_also_liked"}

    out = StringIO()
    call_command("evaluate_recommendations", "--as-of", day, "--horizon-days", "60", "--k", "10", stdout=out)
    assert "NDCG@10" in out.getvalue() and "popularity" in out.getvalue()

    out = StringIO()
    call_command("compute_segments", "--as-of", day, stdout=out)
    assert "silhouette" in out.getvalue()


def test_member_chunks_cover_every_member_once(platform):
    ranges = services.member_chunks(25)
    ids = set(platform.member_ids)
    covered = [m for m in ids if sum(lo <= m < hi for lo, hi in ranges) == 1]
    assert len(covered) == len(ids)


def test_more_than_one_chunk_come_in_a_multiple_of_the_processes_that_share_them(platform, settings):
    """90 members in chunks of at most 40 are three chunks of 30 on one process or three, four on two or four (none
    of them alone in the last round: 23, 23, 23 and 21 members); whatever fits one chunk stays one chunk."""
    def sizes(ranges):
        return [sum(lo <= m < hi for m in platform.member_ids) for lo, hi in ranges]

    assert sizes(services.member_chunks(40, processes=1)) == [30, 30, 30]
    assert sizes(services.member_chunks(40, processes=3)) == [30, 30, 30]
    assert sizes(services.member_chunks(40, processes=2)) == [23, 23, 23, 21]
    assert sizes(services.member_chunks(40, processes=4)) == [23, 23, 23, 21]
    assert len(services.member_chunks(40, processes=200)) == 90  # never more chunks than members
    assert services.member_chunks(90, processes=2) == services.member_chunks(90, processes=1)  # one chunk
    assert len(services.member_chunks(90, processes=2)) == 1
    settings.ANALYTICS_NIGHT_PROCESSES = 2
    assert services.member_chunks(40) == services.member_chunks(40, processes=2)


def test_the_nightly_command_runs_inline_with_a_progress_bar(platform):
    from analytics.models import RecommendationRun

    err = StringIO()
    call_command("run_nightly_pipeline", "--as-of", platform.end.isoformat(), stdout=StringIO(), stderr=err)
    run = RecommendationRun.objects.get(is_current=True)
    assert run.sets.exists()
    assert PropensityScore.objects.filter(as_of=platform.end).count() == 90
    assert "score + recommend" in err.getvalue()

    quiet_out, quiet_err = StringIO(), StringIO()
    call_command("run_nightly_pipeline", "--as-of", platform.end.isoformat(), "--quiet", stdout=quiet_out,
                 stderr=quiet_err)
    assert quiet_out.getvalue() == "" and quiet_err.getvalue() == ""


def test_the_inline_night_ticks_its_progress_once_per_chunk(platform, settings):
    settings.ANALYTICS_CHUNK_SIZE = 40  # 90 members → 3 ranges: a score and a recommend chunk each
    settings.ANALYTICS_NIGHT_PROCESSES = 1  # three ranges, not rounded up to a multiple of two processes
    ticks = []
    services.nightly_pipeline(as_of=platform.end, progress=lambda: ticks.append(1))
    assert len(ticks) == 6
    assert JobRun.objects.filter(job__in=["score_members", "recommend"], status="succeeded").count() == 6


def test_a_fanned_out_run_fits_the_recommender_once_and_its_chunks_load_it(platform, settings, monkeypatch,
                                                                          tmp_path, django_capture_on_commit_callbacks):
    """Prepared for the Celery fan-out (recommendations_prepare), the run's recommender is fitted once and stored;
    a chunk in another process loads it instead of fitting it again, with the same rows; the file goes when the run
    completes, and a chunk retried after that fits the model itself."""
    from analytics.ml import artifacts

    settings.ARTIFACTS_DIR = str(tmp_path)
    as_of = platform.end
    plain = services.recommendations_start(as_of=as_of, k=5, chunks=1)
    services.recommendations_chunk(run=plain)

    ranges = services.member_chunks(size=40, processes=1)
    shared = services._pending_run(as_of=as_of, k=5, chunks=len(ranges), night=None)
    sent = []
    services.recommendations_prepare(run=shared, horizon_days=services.DEFAULT_HORIZON_DAYS, ranges=ranges,
                                     dispatch=lambda kind, **kwargs: sent.append((kwargs["id_from"], kwargs["id_to"])))
    assert sent == ranges
    shared.refresh_from_db()
    name = shared.params["shared_model"]
    assert (artifacts.artifacts_dir() / name).exists()
    assert JobRun.objects.filter(job="share_recommender", status="succeeded", params__run_id=shared.pk).exists()
    fits = []
    real = services.recommendation_model
    monkeypatch.setattr(services, "recommendation_model", lambda when, *args: fits.append(when) or real(when, *args))
    everyone = datasets.all_course_members(as_of)
    assert everyone  # members with every course through their tier: they get no recommendations
    reads, blocked = [], []
    real_reads, real_for = datasets.all_course_members, services.recommendations_for
    monkeypatch.setattr(datasets, "all_course_members", lambda *args: reads.append(args) or real_reads(*args))
    monkeypatch.setattr(services, "recommendations_for",
                        lambda *args, **kwargs: blocked.append(kwargs["blocked"]) or real_for(*args, **kwargs))
    with django_capture_on_commit_callbacks(execute=True):
        for id_from, id_to in ranges:
            services._run_model.clear()  # each chunk as in a process that did not start the run
            services.recommendations_chunk(run=shared, id_from=id_from, id_to=id_to)
    assert fits == [] and reads == []  # the file holds both
    assert blocked == [real_reads(as_of, datasets.MemberRange(id_from, id_to)) for id_from, id_to in ranges]
    shared.refresh_from_db()
    assert shared.is_current and not (artifacts.artifacts_dir() / name).exists()
    assert run_rows(shared) == run_rows(plain)

    services.recommendations_chunk(run=shared, id_from=ranges[0][0], id_to=ranges[0][1])  # delivered again
    assert fits == [as_of] and run_rows(shared) == run_rows(plain)


def test_a_fanned_out_night_scores_from_the_matrix_it_built_and_completes_with_its_last_chunk(
        platform, settings, monkeypatch, tmp_path, django_capture_on_commit_callbacks):
    """Fanned out, the serial part stores each scoring chunk's part of the feature matrix it built; a chunk in another
    process loads it instead of building it, with the scores of an inline night. The night completes when its last
    chunk succeeds, scoring or recommending (on two workers a range's recommendations can finish before its scores),
    and then its files go; a scoring chunk retried after that builds its part itself."""
    from analytics.ml import artifacts, matrices

    settings.ARTIFACTS_DIR = str(tmp_path)
    settings.ANALYTICS_CHUNK_SIZE = 40  # 90 members → 3 ranges
    settings.ANALYTICS_NIGHT_PROCESSES = 1  # three ranges, not rounded up to a multiple of two processes
    as_of = platform.end

    def scores():
        return sorted(PropensityScore.objects.filter(as_of=as_of).values_list("member_id", "probability",
                                                                              "top_reasons"))

    inline_night = services.nightly_pipeline(as_of=as_of)  # inline: trains the serving model, scores from its matrix
    inline = scores()
    assert len(inline) == 90
    inline_recommendations = run_rows(RecommendationRun.objects.get(pk=inline_night["recommendation_run"]))

    sent = []
    result = services.nightly_pipeline(as_of=as_of, fan_out=True,
                                       dispatch=lambda kind, **kwargs: sent.append((kind, kwargs)))
    run = RecommendationRun.objects.get(pk=result["recommendation_run"])
    parts = run.params["shared_matrices"]
    assert len(parts) == 3 and all((artifacts.artifacts_dir() / name).exists() for name in parts)
    assert [kwargs["matrix"] for kind, kwargs in sent if kind == "score"] == parts
    builds = []
    real = matrices._build
    monkeypatch.setattr(matrices, "_build", lambda *args: builds.append(args) or real(*args))
    version = ModelVersion.objects.get(pk=result["model_version"])
    # The recommendation side was sent to another process at the night's start; this one finished first.
    assert [kind for kind, _ in sent][0] == "prepare_recommendations"
    assert "recommend" not in [kind for kind, _ in sent]
    run.refresh_from_db()
    assert run.params["night_done"] is True and "weights" not in run.params
    prepared = dict(sent[0][1])
    assert prepared["ranges"] == services.member_chunks() and prepared["run_id"] == run.pk
    services._run_model.clear()  # as in another process
    services.recommendations_prepare(run=run, horizon_days=prepared["horizon_days"], ranges=prepared["ranges"],
                                     dispatch=lambda kind, **kwargs: sent.append((kind, kwargs)))
    # It read the orders and enrolments first and stored them for the serial part (which, here, had not waited:
    # the recommendation side had not started when the matrix needed them, so it read them itself).
    stored_reads = run.params["shared_reads"]
    assert (artifacts.artifacts_dir() / stored_reads).exists()
    assert all(run.params["token"] in name for name in [*parts, stored_reads])  # the night's files, by its token
    assert JobRun.objects.filter(job="share_reads", status="succeeded").count() == 1
    run.refresh_from_db()
    # Its blend, merged under the row's lock: the serial part's end and its files are kept.
    assert run.params["night_done"] is True and run.params["shared_matrices"] == parts
    assert run.params["weights"] and run.metrics and not run.is_current
    assert [(kwargs["id_from"], kwargs["id_to"]) for kind, kwargs in sent if kind == "recommend"] == prepared["ranges"]
    with django_capture_on_commit_callbacks(execute=True):
        for kind, kwargs in sent:  # every range's recommendations first, each chunk as in another process
            if kind == "recommend":
                services._run_model.clear()
                services.recommendations_chunk(run=run, id_from=kwargs["id_from"], id_to=kwargs["id_to"])
        run.refresh_from_db()
        assert not run.is_current  # its scores are not in yet
        for kind, kwargs in sent:
            if kind == "score":
                services.propensity_score(as_of=as_of, version=version, id_from=kwargs["id_from"],
                                          id_to=kwargs["id_to"], bgnbd=kwargs["bgnbd"], matrix=kwargs["matrix"],
                                          run=run)
    assert builds == []
    assert scores() == inline
    assert run_rows(run) == inline_recommendations  # the recommendation side, prepared in another process
    run.refresh_from_db()
    assert run.is_current
    assert not any((artifacts.artifacts_dir() / name).exists() for name in [*parts, stored_reads])

    first = next(kwargs for kind, kwargs in sent if kind == "score")
    tasks.score_members_chunk_task.delay(as_of.isoformat(), version.pk, first["id_from"], first["id_to"],
                                         first["bgnbd"], first["matrix"], run.pk).get()  # delivered again
    assert len(builds) == 1 and scores() == inline


def test_a_fanned_out_nights_serial_part_takes_the_orders_and_enrolments_the_recommendation_side_read(
        platform, settings, monkeypatch, tmp_path):
    """When the recommendation side has started, the serial part's matrix waits for the orders and enrolments that
    side reads and stores, instead of reading them too: one read of each for the night, the same scores."""
    settings.ARTIFACTS_DIR = str(tmp_path)
    settings.ANALYTICS_CHUNK_SIZE = 40  # 90 members → 3 ranges
    settings.ANALYTICS_NIGHT_PROCESSES = 1  # three ranges, not rounded up to a multiple of two processes
    as_of = platform.end
    services.nightly_pipeline(as_of=as_of)  # inline: trains the serving model
    inline = sorted(PropensityScore.objects.filter(as_of=as_of).values_list("member_id", "probability"))
    PropensityScore.objects.all().delete()
    reads = []
    real = datasets._frame
    monkeypatch.setattr(datasets, "_frame", lambda rows, columns: reads.append(columns) or real(rows, columns))
    later = []

    def dispatch(kind, **kwargs):
        if kind == "prepare_recommendations":  # as if the other process took it at once
            run = RecommendationRun.objects.get(pk=kwargs["run_id"])
            services._run_model.clear()
            services.recommendations_prepare(run=run, horizon_days=kwargs["horizon_days"], ranges=kwargs["ranges"],
                                             dispatch=lambda *args, **kw: None)
        elif kind == "score":
            later.append(kwargs)

    services.nightly_pipeline(as_of=as_of, fan_out=True, dispatch=dispatch)
    assert sum("subscription_id" in columns and "refunded_at" in columns for columns in reads) == 1
    assert reads.count(datasets.ENROLLMENT_COLUMNS) == 1
    assert datasets.ORDER_COLUMNS not in reads
    version = ModelVersion.objects.get(is_serving=True)
    for kwargs in later:
        services.propensity_score(as_of=as_of, version=version, id_from=kwargs["id_from"], id_to=kwargs["id_to"],
                                  bgnbd=kwargs["bgnbd"], matrix=kwargs["matrix"])
    assert sorted(PropensityScore.objects.filter(as_of=as_of).values_list("member_id", "probability")) == inline


def test_the_serial_part_reads_itself_when_the_recommendation_side_has_not_started_failed_or_is_too_slow(
        platform, settings, tmp_path):
    settings.ARTIFACTS_DIR = str(tmp_path)
    run = services._pending_run(as_of=platform.end, k=5, chunks=2,
                                night={"shared_reads": "recommendations/run-x-reads.pickle"})
    assert services._shared_reads(run) is None  # not started: no wait
    started = JobRun.objects.create(job="share_reads", params={"run_id": run.pk}, status=JobRun.Status.RUNNING)
    clock = time.monotonic()
    assert services._shared_reads(run, wait=0.3) is None  # at it, but too slow
    assert time.monotonic() - clock >= 0.3
    started.status = JobRun.Status.FAILED
    started.save()
    clock = time.monotonic()
    assert services._shared_reads(run, wait=30) is None and time.monotonic() - clock < 5  # failed: no wait
    started.status = JobRun.Status.SUCCEEDED
    started.save()
    assert services._shared_reads(run) is None  # done, but its file is gone

def test_the_tasks_take_a_date_or_a_naive_datetime_in_the_site_time_zone():
    from datetime import datetime

    from django.utils import timezone

    midnight = timezone.make_aware(datetime(2025, 12, 31), timezone.get_current_timezone())
    assert tasks._as_of("2025-12-31") == midnight
    assert tasks._as_of("2025-12-31T00:00:00") == midnight
    assert tasks._as_of("2025-12-31T00:00:00+00:00").utcoffset().total_seconds() == 0
    with pytest.raises(ValueError, match="not an ISO datetime"):
        tasks._as_of("last tuesday")
