"""`manage.py evaluate_models` on a small slice: it runs, prints ours against every peer with CIs, and the served
model is never worse than its own baselines on validation. Data conditions (no history, one class, orders only)
train and score instead of failing."""
from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from analytics.ml import evaluation, repurchase
from analytics.models import PropensityScore
from analytics.scoring import services
from analytics.tracking import record_event
from members.models import Order
from tests.analytics.factories import make_platform


@pytest.fixture
def platform(db):
    return make_platform(members=150, days=300, seed=4)


def test_evaluate_models_prints_ours_against_every_peer_with_confidence_intervals(platform):
    out = StringIO()
    as_of = platform.end - timedelta(days=1)
    call_command("evaluate_models", "--as-of", as_of.date().isoformat(), "--horizon", "30", "--k", "5", stdout=out)
    text = out.getvalue()
    for peer in ("ours", "rfm_logistic", "bgnbd", "recent_activity", "popularity", "decayed_popularity",
                 "own_then_popularity", "item_knn", "NDCG@5", "hit@5"):
        assert peer in text
    assert "[" in text  # intervals printed


def test_the_served_model_is_never_worse_than_its_baselines_on_validation(platform):
    result = repurchase.train(platform.end - timedelta(days=1), 30)
    assert result.extra["validated"]
    for name, metrics in result.baselines.items():
        assert result.metrics["roc_auc"] >= metrics["roc_auc"], name


def test_the_tuned_recommendation_blend_is_never_worse_than_the_peers_on_its_validation_split(platform):
    as_of = platform.end - timedelta(days=1)
    sig, truth = evaluation._split(as_of - timedelta(days=60), as_of - timedelta(days=30))
    from analytics.ml import recommendations

    weights, ndcg = recommendations.tune(sig, truth, 5)
    for peer_weights, popularity in recommendations.PEER_WEIGHTS.values():
        if popularity == "decayed":
            peer = recommendations.ranking_metrics(recommendations.top_k(sig, peer_weights, 5), truth, 5)
            assert ndcg >= peer["ndcg"].mean() - 1e-9


def test_one_class_history_serves_a_baseline_and_scores_everyone(platform):
    as_of = platform.end - timedelta(days=1)
    Order.objects.filter(paid_at__gte=platform.start + timedelta(days=20)).delete()  # nobody buys again
    outcome = services.repurchase_train(as_of=as_of, horizon_days=30)
    assert outcome.version.algorithm in repurchase.BASELINES
    assert "same outcome" in outcome.version.notes
    assert services.propensity_score(as_of=as_of, version=outcome.version) == 150


def test_a_platform_with_no_history_still_gets_scores(db):
    from members.models import User

    User.objects.create_user(email="solo@example.com", password="x")
    as_of = services.start_of_day() + timedelta(days=1)  # the member joined today
    outcome = services.repurchase_train(as_of=as_of, horizon_days=30)
    assert outcome.version.algorithm == "recent_activity" and "nothing to learn" in outcome.version.notes
    assert services.propensity_score(as_of=as_of, version=outcome.version) == 1
    assert PropensityScore.objects.count() == 1


def test_record_event_stores_a_quantity_from_the_kwarg_or_from_properties(db):
    from analytics.models import Event
    from members.models import User

    member = User.objects.create_user(email="q@example.com", password="x")
    record_event(member=member, kind="video_watched", quantity=42.5, on_commit=False)
    record_event(member=member, kind="video_watched", properties={"quantity": 95, "unit": "seconds"}, on_commit=False)
    record_event(member=member, kind="video_watched", properties={"quantity": "95"}, on_commit=False)
    assert list(Event.objects.order_by("id").values_list("quantity", flat=True)) == [42.5, 95.0, None]


@pytest.mark.parametrize(("days", "horizon"), [(300, 30), (80, 90)])
def test_evaluate_models_runs_on_an_orders_only_platform_with_long_or_short_history(db, days, horizon):
    platform = make_platform(members=80, days=days, seed=6, orders_only=True)
    out = StringIO()
    call_command("evaluate_models", "--as-of", platform.end.date().isoformat(), "--horizon", str(horizon),
                 "--k", "5", stdout=out)
    assert "ours" in out.getvalue() and "own_then_popularity" in out.getvalue()


def test_a_serving_model_trained_on_an_older_feature_set_is_replaced_not_used(platform):
    from analytics.ml import artifacts
    from analytics.models import ModelVersion

    as_of = platform.end - timedelta(days=1)
    old = ModelVersion.objects.create(kind="repurchase", as_of=as_of - timedelta(days=7), horizon_days=30,
                                      algorithm="gradient_boosting", metrics={"roc_auc": 0.99}, is_serving=True)
    old.artifact_path = artifacts.save({"model": None, "features": ["bg_expected_90"]}, "repurchase/old.joblib")
    old.save()
    version = services.model_for(as_of, 30)
    old.refresh_from_db()
    assert version.pk != old.pk and version.is_serving and not old.is_serving
    assert services.propensity_score(as_of=as_of, version=version) == 150
