"""The nightly run relearns the engagement weights and reselects the recommendation blend every
ANALYTICS_RELEARN_DAYS (the propensity model's weekly cadence); the nights between reuse what was learned, and
never anything learned after their own as_of."""
from __future__ import annotations

from datetime import timedelta

import pytest

from analytics.ml import engagement, evaluation
from analytics.models import EngagementScore, EngagementWeights, JobRun, RecommendationRun
from analytics.scoring import services, tasks
from tests.analytics.factories import make_platform


@pytest.fixture
def platform(db, monkeypatch):
    # 90 members are below the learning minimum; the rule under test is the cadence, not the regression.
    monkeypatch.setattr(engagement, "MIN_ROWS", 20)
    monkeypatch.setattr(engagement, "MIN_CLASS", 3)
    return make_platform(members=90, days=260, seed=13)


@pytest.fixture
def learned(monkeypatch):
    calls = []
    real = engagement.learn_weights
    monkeypatch.setattr(engagement, "learn_weights", lambda *a: calls.append(1) or real(*a))
    return calls


def test_engagement_weights_are_learned_once_a_week_and_reused_between(platform, learned, settings):
    settings.ANALYTICS_RELEARN_DAYS = 7
    night = platform.end - timedelta(days=10)
    services.engagement_compute(as_of=night)
    assert len(learned) == 1
    kept = EngagementWeights.objects.get()
    assert kept.as_of == night and sum(kept.weights.values()) == pytest.approx(1.0, abs=1e-3)

    for days in range(1, 7):  # the six nights after it reuse the weights
        services.engagement_compute(as_of=night + timedelta(days=days))
    assert len(learned) == 1 and EngagementWeights.objects.count() == 1
    later = night + timedelta(days=6)
    scores = dict(EngagementScore.objects.filter(as_of=later).values_list("member_id", "raw"))
    comps = engagement.components(services.matrices.at(later))
    expected = engagement.score(comps, engagement.Weights(kept.weights, "learned"))["raw"]
    assert scores == pytest.approx(expected.to_dict())

    services.engagement_compute(as_of=night + timedelta(days=7))  # a week old: learned again
    assert len(learned) == 2 and EngagementWeights.objects.count() == 2


def test_a_backfill_never_reuses_weights_learned_after_its_as_of(platform, learned, settings):
    settings.ANALYTICS_RELEARN_DAYS = 7
    night = platform.end - timedelta(days=5)
    services.engagement_compute(as_of=night)
    services.engagement_compute(as_of=night - timedelta(days=1))
    assert len(learned) == 2
    assert sorted(EngagementWeights.objects.values_list("as_of", flat=True)) == [night - timedelta(days=1), night]


def test_relearn_days_zero_learns_every_night_and_keeps_nothing(platform, learned, settings):
    settings.ANALYTICS_RELEARN_DAYS = 0
    night = platform.end - timedelta(days=3)
    services.engagement_compute(as_of=night)
    services.engagement_compute(as_of=night + timedelta(days=1))
    assert len(learned) == 2 and not EngagementWeights.objects.exists()


def _tuned(monkeypatch):
    calls = []
    real = evaluation.tuned_blend
    monkeypatch.setattr(evaluation, "tuned_blend", lambda *a, **kw: calls.append(a[0]) or real(*a, **kw))
    return calls


def _complete(run: RecommendationRun) -> RecommendationRun:
    services.recommendations_chunk(run=run)
    run.refresh_from_db()
    assert run.is_current
    return run


def test_the_recommendation_blend_is_selected_once_a_week_and_reused_between(platform, settings, monkeypatch):
    settings.ANALYTICS_RELEARN_DAYS = 7
    tuned = _tuned(monkeypatch)
    night = platform.end - timedelta(days=8)
    first = _complete(services.recommendations_start(as_of=night, k=5))
    assert tuned == [night] and first.params["tuned"]

    second = _complete(services.recommendations_start(as_of=night + timedelta(days=1), k=5))
    assert tuned == [night]  # not selected again
    assert second.params["weights"] == first.params["weights"]
    assert second.params["popularity"] == first.params["popularity"]
    assert second.params["selected_in_run"] == first.pk
    assert second.params["evaluation_window"] == first.params["evaluation_window"]
    assert second.metrics == first.metrics and second.baseline_metrics == first.baseline_metrics
    assert second.sets.exists()

    # A reused blend is reused from the run that selected it: a week after that run it is selected again.
    third = _complete(services.recommendations_start(as_of=night + timedelta(days=6), k=5))
    assert third.params["selected_in_run"] == first.pk and len(tuned) == 1
    _complete(services.recommendations_start(as_of=night + timedelta(days=7), k=5))
    assert tuned == [night, night + timedelta(days=7)]

    # Another k is another selection; so is a backfill before the selecting night.
    _complete(services.recommendations_start(as_of=night + timedelta(days=7), k=3))
    _complete(services.recommendations_start(as_of=night - timedelta(days=1), k=5))
    assert len(tuned) == 4


def test_relearn_days_zero_selects_the_blend_every_night(platform, settings, monkeypatch):
    settings.ANALYTICS_RELEARN_DAYS = 0
    tuned = _tuned(monkeypatch)
    night = platform.end - timedelta(days=3)
    _complete(services.recommendations_start(as_of=night, k=5))
    _complete(services.recommendations_start(as_of=night + timedelta(days=1), k=5))
    assert len(tuned) == 2


def test_the_number_of_segments_is_chosen_once_a_week_and_kept_between(platform, settings, monkeypatch):
    from analytics.ml import segmentation
    from analytics.models import SegmentRun

    settings.ANALYTICS_RELEARN_DAYS = 7
    tried = []
    real = segmentation._fit
    monkeypatch.setattr(segmentation, "_fit", lambda frame, **kw: tried.append(list(kw.get("ks", segmentation.K_RANGE)))
                        or real(frame, **kw))
    night = platform.end - timedelta(days=10)
    chosen = services.segments_compute(as_of=night)
    assert chosen.criterion == "silhouette" and len(chosen.criterion_scores) > 1 and tried == [list(range(3, 8))]

    tried.clear()
    kept = services.segments_compute(as_of=night + timedelta(days=3))
    assert tried == [[chosen.k]] and kept.k == chosen.k
    assert kept.criterion == f"silhouette, k of {night:%Y-%m-%d}" and kept.criterion_scores == {}
    assert kept.assignments.count() == chosen.assignments.count()

    tried.clear()
    services.segments_compute(as_of=night + timedelta(days=7))  # a week on: chosen again
    services.segments_compute(as_of=night - timedelta(days=1))  # a backfill never keeps a later choice
    assert tried == [list(range(3, 8))] * 2
    assert SegmentRun.objects.filter(criterion="silhouette").count() == 3


def test_without_a_cadence_every_night_chooses_the_number_of_segments(platform, settings):
    settings.ANALYTICS_RELEARN_DAYS = 0
    night = platform.end - timedelta(days=10)
    services.segments_compute(as_of=night)
    assert services.segments_compute(as_of=night + timedelta(days=1)).criterion == "silhouette"


def test_rerunning_a_night_replaces_its_segment_run_and_its_assignments(platform, settings):
    from analytics.models import SegmentAssignment, SegmentRun

    night = platform.end - timedelta(days=10)
    first = services.segments_compute(as_of=night)
    count = first.assignments.count()
    again = services.segments_compute(as_of=night)
    assert SegmentRun.objects.filter(as_of=night).get() == again and again.pk != first.pk
    assert SegmentAssignment.objects.filter(as_of=night).count() == count == again.assignments.count()


def test_the_weekly_task_learns_the_engagement_weights_from_a_training_matrix_and_that_night_reuses_them(
        platform, learned, monkeypatch, settings):
    """Beat's weekly task (before that night) learns the week's engagement weights with the model, from the matrix at
    as_of − 90 days that training builds anyway: the weights a night would have learned, and the night reuses them."""
    from analytics.ml import matrices

    settings.ANALYTICS_RELEARN_DAYS = 7
    as_of = platform.end
    builds = []
    real = matrices._build
    monkeypatch.setattr(matrices, "_build", lambda cutoff, *args: builds.append(cutoff) or real(cutoff, *args))
    tasks.train_repurchase_model_task.delay(as_of.isoformat(), 30).get()
    kept = EngagementWeights.objects.get()
    assert kept.as_of == as_of and len(learned) == 1
    assert len(builds) == len(set(builds)) and as_of - timedelta(days=90) in builds  # built once, for training too

    learned_alone = dict(kept.weights)
    EngagementWeights.objects.all().delete()
    assert services.engagement_weights(as_of).weights == learned_alone  # what a night learns on its own
    EngagementWeights.objects.exclude(pk=EngagementWeights.objects.order_by("pk").first().pk).delete()

    builds.clear()
    learned.clear()
    services.nightly_pipeline(as_of=as_of)
    assert learned == [] and EngagementWeights.objects.count() == 1  # reused, not learned again
    assert as_of - timedelta(days=90) not in builds
    assert "learned at" in JobRun.objects.get(job="compute_engagement").message


def test_the_weekly_blend_selection_is_what_that_night_would_select_and_the_week_reuses_it(platform, settings,
                                                                                          monkeypatch):
    """Beat's weekly task selects the blend ahead of that night: a run with the selection and its validation figures,
    no rows, never current. That night and the six after it reuse it; the blend is the one the night would have
    selected itself."""
    settings.ANALYTICS_RELEARN_DAYS = 7
    night = platform.end - timedelta(days=8)
    alone = _complete(services.recommendations_start(as_of=night, k=5))  # the night selecting it itself
    RecommendationRun.objects.all().delete()

    tuned = _tuned(monkeypatch)
    pk = tasks.select_recommendation_blend_task.delay(night.isoformat(), 5).get()
    selection = RecommendationRun.objects.get(pk=pk)
    assert tuned == [night] and selection.params["selection_only"] and not selection.is_current
    assert not selection.sets.exists()
    for key in ("weights", "popularity", "tuned", "evaluation_window"):
        assert selection.params[key] == alone.params[key], key
    assert selection.metrics == alone.metrics and selection.baseline_metrics == alone.baseline_metrics
    assert tasks.select_recommendation_blend_task.delay(night.isoformat(), 5).get() == pk  # selected once
    assert services._recent_blend(night, 3, services.DEFAULT_HORIZON_DAYS) is None  # another k is another selection

    first = _complete(services.recommendations_start(as_of=night, k=5))
    later = _complete(services.recommendations_start(as_of=night + timedelta(days=6), k=5))
    assert tuned == [night]
    assert first.params["selected_in_run"] == later.params["selected_in_run"] == pk
    assert later.params["weights"] == alone.params["weights"] and later.sets.exists()
    _complete(services.recommendations_start(as_of=night + timedelta(days=7), k=5))  # a week after it
    assert tuned == [night, night + timedelta(days=7)]
