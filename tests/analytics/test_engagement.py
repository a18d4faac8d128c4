from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from analytics.ml import engagement
from analytics.models import EngagementScore, JobRun
from analytics.scoring import services
from tests.analytics.factories import append_future_history, make_platform


def comps(values: dict[str, list[float]]) -> pd.DataFrame:
    frame = pd.DataFrame({c: values.get(c, [0.0] * len(next(iter(values.values())))) for c in engagement.COMPONENTS})
    frame.index = pd.Index(range(1, len(frame) + 1), name="member_id")
    return frame


def test_scores_are_percentiles_with_zero_for_no_activity():
    frame = comps({"learning": [0, 1, 2, 3, 0], "purchases": [0, 0, 1, 2, 0]})
    scored = engagement.score(frame, engagement.Weights(dict(engagement.HAND_WEIGHTS), "hand"))
    assert scored.loc[1, "score"] == 0 and scored.loc[5, "score"] == 0
    assert scored.loc[4, "score"] == 100
    assert scored.loc[2, "score"] < scored.loc[3, "score"] < scored.loc[4, "score"]
    assert scored["score"].between(0, 100).all()


def test_more_recent_activity_weighs_more_than_old_activity():
    feats = pd.DataFrame(0.0, index=pd.Index([1, 2], name="member_id"), columns=services.features.FEATURES)
    feats.loc[1, ["lessons_7", "lessons_30", "lessons_90"]] = [3, 3, 3]   # three lessons this week
    feats.loc[2, ["lessons_7", "lessons_30", "lessons_90"]] = [0, 0, 3]   # three lessons two months ago
    c = engagement.components(feats)
    assert c.loc[1, "learning"] > 3 * c.loc[2, "learning"]


def test_a_recent_review_counts_as_engagement():
    feats = pd.DataFrame(0.0, index=pd.Index([1, 2, 3], name="member_id"), columns=services.features.FEATURES)
    feats.loc[:, ["lessons_7", "lessons_30", "lessons_90"]] = 2.0
    feats.loc[1, ["reviews_30", "reviews_90"]] = [1, 1]   # reviewed a course this month
    feats.loc[2, ["reviews_30", "reviews_90"]] = [0, 1]   # two months ago
    c = engagement.components(feats)
    assert c.loc[1, "reviews"] > c.loc[2, "reviews"] > c.loc[3, "reviews"] == 0
    scored = engagement.score(c, engagement.Weights(dict(engagement.HAND_WEIGHTS), "hand"))
    assert scored.loc[1, "score"] > scored.loc[2, "score"] > scored.loc[3, "score"]


def test_weights_fall_back_to_hand_weights_without_enough_history():
    few = comps({"learning": [1.0] * 50})
    weights = engagement.learn_weights(few, pd.Series(1, index=[1, 2, 3]))
    assert weights.source == "hand" and weights.weights == engagement.HAND_WEIGHTS


def test_weights_are_learned_from_outcomes_when_history_allows():
    rng = np.random.default_rng(0)
    n = 600
    frame = comps({"learning": rng.exponential(1, n), "community": rng.exponential(1, n),
                   "purchases": rng.exponential(1, n), "email": rng.exponential(1, n)})
    bought = (frame["community"] + rng.normal(0, 0.3, n) > 1.0).astype(int)
    weights = engagement.learn_weights(frame, bought)
    assert weights.source == "learned"
    assert sum(weights.weights.values()) == pytest.approx(1.0, abs=1e-3)
    assert max(weights.weights, key=weights.weights.get) == "community"


@pytest.mark.django_db
def test_compute_writes_one_row_per_member_replaces_on_rerun_and_ignores_the_future():
    platform = make_platform(members=80, days=240, seed=4)
    as_of = platform.start + timedelta(days=200)
    assert services.engagement_compute(as_of=as_of) == 80
    first = dict(EngagementScore.objects.filter(as_of=as_of).values_list("member_id", "score"))
    assert len(first) == 80 and max(first.values()) == 100
    row = EngagementScore.objects.filter(as_of=as_of).order_by("-score").first()
    assert set(row.components) == set(engagement.COMPONENTS) and row.raw > 0 and row.weights_source in {"hand", "learned"}
    run = JobRun.objects.filter(job="compute_engagement").first()
    assert run.status == JobRun.Status.SUCCEEDED and run.rows == 80 and "weights" in run.message

    append_future_history(as_of, platform.member_ids, platform.course_ids)
    services.engagement_compute(as_of=as_of)
    assert EngagementScore.objects.filter(as_of=as_of).count() == 80
    assert dict(EngagementScore.objects.filter(as_of=as_of).values_list("member_id", "score")) == first
    # A later snapshot is kept beside it (trends), not instead of it.
    services.engagement_compute(as_of=as_of + timedelta(days=1))
    assert EngagementScore.objects.values("as_of").distinct().count() == 2
