from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.conf import settings

from analytics.ml import artifacts, features, repurchase
from analytics.ml.reasons import reasons_display
from analytics.models import ModelVersion, PropensityScore
from analytics.scoring import services
from tests.analytics.factories import append_future_history, make_platform

AS_OF = datetime(2025, 10, 1, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------------------------
# Pure: planning, metrics, BG/NBD, label shuffle, planted signal


def test_validation_cutoff_is_later_than_every_training_label_window():
    plan = repurchase.plan(AS_OF, 30, AS_OF - timedelta(days=365))
    assert plan.horizon_days == 30 and plan.notes == ""
    assert plan.validation_cutoff == AS_OF - timedelta(days=30)
    assert len(plan.train_cutoffs) == repurchase.N_TRAIN_CUTOFFS
    for cutoff in plan.train_cutoffs:
        assert cutoff + timedelta(days=plan.horizon_days) <= plan.validation_cutoff


def test_short_history_trains_on_the_longest_window_that_fits_and_says_so():
    plan = repurchase.plan(AS_OF, 90, AS_OF - timedelta(days=100))
    assert plan.horizon_days == 35  # (100 − 30 days of feature history) / 2
    assert "35-day" in plan.notes and "90" in plan.notes
    assert plan.train_cutoffs[0] + timedelta(days=35) <= plan.validation_cutoff
    # Shorter windows are pooled in (the horizon is a feature); each still ends by the validation cutoff.
    assert {w.horizon_days for w in plan.train_windows} == {35, 17, 8}
    assert all(w.cutoff + timedelta(days=w.horizon_days) <= plan.validation_cutoff for w in plan.train_windows)
    # The refit windows end by as_of and include the latest fully labelled one.
    assert repurchase.Window(plan.validation_cutoff, 35) in plan.refit_windows
    assert all(w.cutoff + timedelta(days=w.horizon_days) <= AS_OF for w in plan.refit_windows)


def test_too_little_history_is_a_plan_to_serve_the_rule_not_an_error():
    plan = repurchase.plan(AS_OF, 90, AS_OF - timedelta(days=40))
    assert not plan.learnable and "recent-activity rule" in plan.notes
    none = repurchase.plan(AS_OF, 90, None)
    assert not none.learnable and "nothing to learn" in none.notes


def test_metrics_on_a_known_ranking():
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    p = np.linspace(1, 0, 10)
    m = repurchase.evaluate(y, p)
    assert m["roc_auc"] == 1.0 and m["average_precision"] == 1.0
    assert m["base_rate"] == 0.2 and m["lift_top_decile"] == 5.0
    assert m["brier"] == pytest.approx(float(np.mean((p - y) ** 2)), abs=1e-4)


def test_bgnbd_ranks_a_frequent_recent_buyer_above_a_lapsed_one():
    rng = np.random.default_rng(0)
    n = 400
    T = rng.uniform(20, 52, n)
    x = rng.poisson(3, n).astype(float)
    tx = np.where(x > 0, T * rng.uniform(0.2, 1.0, n), 0.0)
    inputs = pd.DataFrame({"x": x, "t_x": tx, "T": T, "buyer": 1.0})
    params = repurchase.bgnbd_fit(inputs)
    assert params["fitted"] == 1.0
    probe = pd.DataFrame({"x": [8.0, 8.0, 0.0], "t_x": [39.5, 5.0, 0.0], "T": [40.0, 40.0, 40.0],
                          "buyer": [1.0, 1.0, 0.0]})
    p = repurchase.bgnbd_probability(params, probe, 30)
    assert p[0] > p[1] > p[2] == 0.0


def synthetic_frames(rng: np.random.Generator, n: int, planted: bool) -> list[repurchase.LabelledFrame]:
    frames = []
    for _i, cutoff in enumerate([AS_OF - timedelta(days=90), AS_OF - timedelta(days=60), AS_OF - timedelta(days=30)]):
        X = pd.DataFrame(rng.poisson(2.0, size=(n, len(features.FEATURES))).astype(float),
                         columns=features.FEATURES, index=pd.Index(np.arange(n) + 1, name="member_id"))
        if planted:
            y = (X["lessons_30"] + rng.normal(0, 0.7, n) > 2.5).astype(int)
        else:
            y = pd.Series(rng.integers(0, 2, n), index=X.index)
        X["bg_T"] = X["bg_t_x"] + X["bg_T"] + 5
        X["horizon_days"] = 30.0
        frames.append(repurchase.LabelledFrame(cutoff, X, y.rename("label"), 30))
    return frames


def test_with_shuffled_labels_the_pipeline_cannot_see_the_answer():
    frames = synthetic_frames(np.random.default_rng(1), 1500, planted=False)
    plan = repurchase.plan(AS_OF, 30, AS_OF - timedelta(days=200))
    result = repurchase.fit_and_validate(frames[:2], frames[2], plan)
    assert 0.4 < result.metrics["roc_auc"] < 0.6


def test_a_planted_signal_is_found():
    frames = synthetic_frames(np.random.default_rng(2), 1500, planted=True)
    plan = repurchase.plan(AS_OF, 30, AS_OF - timedelta(days=200))
    result = repurchase.fit_and_validate(frames[:2], frames[2], plan)
    assert result.metrics["roc_auc"] > 0.85
    assert result.algorithm in repurchase.LEARNED
    for name in repurchase.BASELINES:
        assert result.metrics["roc_auc"] > result.baselines[name]["roc_auc"] + 0.2
    # Bootstrap CIs: the AUC lies inside its own interval; the difference to a baseline is clearly above 0.
    lo, hi = result.metrics["ci"]["roc_auc"]
    assert lo <= result.metrics["roc_auc"] <= hi
    assert result.baselines["rfm_logistic"]["ci"]["auc_diff"][0] > 0
    assert next(iter(result.feature_importance)) == "lessons_30"
    # Calibrated: mean predicted probability close to the observed rate on the later cutoff.
    p = result.model.predict_proba(frames[2].X)[:, 1]
    assert abs(p.mean() - frames[2].y.mean()) < 0.05


def test_the_candidates_fitted_in_threads_are_the_candidates_fitted_one_after_another(settings):
    frames = synthetic_frames(np.random.default_rng(3), 1500, planted=True)
    X, y = repurchase._concat(frames)
    settings.ANALYTICS_FIT_THREADS = 1
    alone = repurchase._fit_candidates(X, y)
    settings.ANALYTICS_FIT_THREADS = 3
    threaded = repurchase._fit_candidates(X, y)
    assert list(threaded) == list(alone) == list(repurchase.ALGORITHMS)
    for name, served in alone.items():
        assert np.array_equal(threaded[name].predict_proba(X)[:, 1], served.predict_proba(X)[:, 1]), name


# ---------------------------------------------------------------------------------------------------------------
# With the database: train, store, promote, score, leakage


@pytest.fixture
def platform(db):
    return make_platform(members=180, days=300, seed=11)


def test_training_stores_a_version_with_baselines_and_an_artifact(platform):
    as_of = platform.end - timedelta(days=1)
    outcome = services.repurchase_train(as_of=as_of, horizon_days=30)
    version = ModelVersion.objects.get(pk=outcome.version.pk)
    assert outcome.promoted and version.is_serving
    assert version.algorithm in repurchase.ALGORITHMS
    for block in (version.metrics, *(version.baselines[name] for name in repurchase.BASELINES
                                      if name != version.algorithm)):
        assert {"roc_auc", "average_precision", "brier", "lift_top_decile", "base_rate"} <= set(block)
    assert version.validation_cutoff == as_of - timedelta(days=30)
    assert all(datetime.fromisoformat(c) < version.validation_cutoff for c in version.train_cutoffs)
    assert version.features == features.FEATURES and version.calibration
    assert (Path(settings.ARTIFACTS_DIR) / version.artifact_path).exists()
    assert artifacts.load(version.artifact_path)["algorithm"] == version.algorithm
    # The served model is never worse than its own baselines on validation (they are candidates too).
    for name in repurchase.BASELINES:
        if name != version.algorithm:
            assert version.metrics["roc_auc"] >= version.baselines[name]["roc_auc"]
    assert version.metrics["roc_auc"] > 0.7  # so the shuffled-label test below has a real signal to lose


def test_end_to_end_with_shuffled_labels_the_model_is_no_better_than_chance(platform, monkeypatch):
    """The same database and features, but the label is a coin flip per member and cutoff: if the pipeline could see
    the answer through some leak, AUC would stay high."""
    from analytics.ml import datasets

    rng = np.random.default_rng(5)

    def coin_flips(start, end, rng_=None):
        return {m for m in platform.member_ids if rng.random() < 0.3}

    monkeypatch.setattr(datasets, "buyers_between", coin_flips)
    outcome = services.repurchase_train(as_of=platform.end - timedelta(days=1), horizon_days=30, promote=False)
    assert 0.35 < outcome.version.metrics["roc_auc"] < 0.65


def test_the_candidates_are_fitted_in_a_thread_once_the_selection_windows_exist_and_train_the_same_model(
        platform, monkeypatch):
    """repurchase._train fits the candidates (fit_candidates) in a thread of their own while it builds the
    validation and refit windows: the selection windows are built when the fit starts, and the model is the one
    fitted after every window, on the same rows (fit_and_validate fitting them itself)."""
    import threading

    from analytics.ml import matrices

    as_of = platform.end - timedelta(days=1)
    seen = []
    fit_candidates = repurchase.fit_candidates

    def recorded(train_frames):
        seen.append((threading.current_thread().name, sorted({c for c, _ in (matrices._shared or {})}),
                     [f.cutoff for f in train_frames]))
        return fit_candidates(train_frames)

    monkeypatch.setattr(repurchase, "fit_candidates", recorded)
    overlapped = repurchase.train(as_of, 30)
    (thread, built, selection), = seen
    assert thread.startswith("candidates")
    assert set(selection) <= set(built)
    from analytics.ml import datasets

    plan = repurchase.plan(as_of, 30, datasets.history_start(as_of))
    assert selection == [w.cutoff for w in plan.train_windows]

    monkeypatch.setattr(repurchase, "fit_candidates", lambda train_frames: None)  # fit_and_validate fits them
    afterwards = repurchase.train(as_of, 30)
    assert overlapped.algorithm == afterwards.algorithm and overlapped.candidates == afterwards.candidates
    X = overlapped.validation.X
    assert np.array_equal(overlapped.model.predict_proba(X), afterwards.model.predict_proba(X))


@pytest.mark.parametrize("chosen", ["gradient_boosting", "logistic_regression"])
def test_gradient_boosting_refitted_ahead_of_validation_is_the_model_refitted_after_it(
        platform, monkeypatch, settings, chosen):
    """repurchase._train starts gradient boosting's refit (REFIT_AHEAD) in a thread of its own once the refit
    windows exist, before validation chooses: when validation chooses it, that fit is served and nothing is refitted
    after validation; when validation chooses another model, that one is refitted as before. Either way the served
    model is the one refitted after validation without REFIT_AHEAD."""
    import threading

    settings.ANALYTICS_FIT_THREADS = 2
    monkeypatch.setattr(repurchase, "_pick", lambda candidates, fitted, any_buyer: (chosen, True))
    fits = []
    fit_one = repurchase._fit_one

    def recorded(algorithm, X, y):
        fits.append((algorithm, threading.current_thread().name, len(X)))
        return fit_one(algorithm, X, y)

    monkeypatch.setattr(repurchase, "_fit_one", recorded)
    as_of = platform.end - timedelta(days=1)
    ahead = repurchase.train(as_of, 30)
    refit_rows = ahead.extra["refit_rows"]
    assert refit_rows > 0
    assert [(name, rows) for name, thread, rows in fits if thread.startswith("refit-ahead")] == [
        ("gradient_boosting", refit_rows)]
    after_validation = [name for name, thread, _ in fits if thread == threading.main_thread().name]
    assert after_validation == ([] if chosen == "gradient_boosting" else [chosen])

    monkeypatch.setattr(repurchase, "REFIT_AHEAD", ())
    fits.clear()
    after = repurchase.train(as_of, 30)
    assert not [thread for _, thread, _ in fits if thread.startswith("refit-ahead")]
    assert [name for name, thread, _ in fits if thread == threading.main_thread().name] == [chosen]
    assert ahead.algorithm == after.algorithm == chosen
    assert after.extra["refit_rows"] == refit_rows
    assert ahead.refit_data[0].equals(after.refit_data[0]) and ahead.refit_data[1].equals(after.refit_data[1])
    X = ahead.validation.X
    assert np.array_equal(ahead.model.predict_proba(X), after.model.predict_proba(X))


def test_no_refit_ahead_when_training_fits_one_model_at_a_time(settings):
    settings.ANALYTICS_FIT_THREADS = 1
    frames = synthetic_frames(np.random.default_rng(4), 300, planted=True)
    assert repurchase.refit_ahead(frames) is None
    settings.ANALYTICS_FIT_THREADS = 2
    ahead = repurchase.refit_ahead(frames)
    assert list(ahead.fits) == ["gradient_boosting"]
    assert np.array_equal(ahead.fits["gradient_boosting"].result().predict_proba(frames[0].X),
                          repurchase._fit_one("gradient_boosting", *repurchase._concat(frames)).predict_proba(frames[0].X))


def test_gradient_boosting_fitted_without_its_constant_columns_is_the_same_model(platform, monkeypatch):
    """Gradient boosting is fitted on the columns with more than one value in its training rows (_fit_columns):
    its trees, and so its probabilities, its reasons and its feature importance, are those of the fit on every
    column, which builds a histogram for each constant column and never splits on it. A model stored before
    (no fit_columns) reads every column, as it did."""
    as_of = platform.end - timedelta(days=1)
    result = repurchase.train(as_of, 30)
    X, y = (frame.copy() for frame in result.refit_data)
    names = repurchase.MODEL_FEATURES
    # Constant columns (zeros, another value), and one with a value and NaN: two values, so it is kept.
    X["lessons_7"], X["posts_90"], X["tier_price"] = 0.0, 0.0, 49.0
    X["reviews_30"] = np.where(np.arange(len(X)) % 3 == 0, np.nan, 1.0)
    skipping = repurchase._fit_one("gradient_boosting", X, y)
    monkeypatch.setattr(repurchase, "SKIPS_CONSTANT_COLUMNS", ())
    every = repurchase._fit_one("gradient_boosting", X, y)
    assert every.fit_columns is None and every.model_columns == names
    assert skipping.feature_names == names
    assert {"lessons_7", "posts_90", "tier_price"} <= set(names) - set(skipping.fit_columns)
    assert "reviews_30" in skipping.fit_columns
    assert [n for n in names if n in skipping.fit_columns] == skipping.fit_columns
    fit_rows = X[~repurchase._calibration_mask(X.index)]
    assert skipping.fit_columns == [n for n in names if fit_rows[n].nunique(dropna=False) > 1]
    assert len(skipping.model._predictors) == len(every.model._predictors)
    for (kept,), (all_of,) in zip(skipping.model._predictors, every.model._predictors, strict=True):
        a, b = kept.nodes, all_of.nodes
        assert np.array_equal(np.array(skipping.fit_columns)[a["feature_idx"][a["is_leaf"] == 0]],
                              np.array(names)[b["feature_idx"][b["is_leaf"] == 0]])
        assert np.array_equal(a["value"], b["value"]) and np.array_equal(a["num_threshold"], b["num_threshold"])
    # Scoring rows where a column constant in training varies: both models clip it to its one training value (the
    # trees above are what shows the skipping model never reads it).
    scoring = repurchase.unlabelled(result.validation.X, 30)
    scoring["lessons_7"] = np.arange(len(scoring), dtype=float)
    assert np.array_equal(skipping.predict_proba(scoring), every.predict_proba(scoring))
    assert np.array_equal(skipping.raw(scoring), every.raw(scoring))
    reference = result.validation.X[names].median().to_dict()

    def art(served):
        return {"model": served, "features": names, "reference": reference, "horizon_days": 30}

    contrib = repurchase.contributions(art(skipping), scoring)
    pd.testing.assert_frame_equal(contrib, repurchase.contributions(art(every), scoring), check_exact=True)
    assert list(contrib.columns) == names and (contrib[["lessons_7", "posts_90"]] == 0).all().all()
    assert (repurchase.score(art(skipping), scoring, as_json=True)["top_reasons"].tolist()
            == repurchase.score(art(every), scoring, as_json=True)["top_reasons"].tolist())
    labels = result.validation.y
    assert list(repurchase.importance(skipping, scoring, labels).items()) == list(
        repurchase.importance(every, scoring, labels).items())
    # Through predict_proba (no readable trees): the same effects.
    monkeypatch.setattr(repurchase, "_ablation_by_path", lambda *args: None)
    pd.testing.assert_frame_equal(repurchase.contributions(art(skipping), scoring), contrib, check_exact=True)
    # A model stored before fit_columns existed reads every column.
    del every.__dict__["fit_columns"]
    assert every.model_columns == names
    assert np.array_equal(every.predict_proba(scoring), skipping.predict_proba(scoring))


def test_a_new_model_is_promoted_only_if_it_beats_the_serving_one(platform):
    as_of = platform.end - timedelta(days=1)
    strong = ModelVersion.objects.create(kind="repurchase", as_of=as_of - timedelta(days=7), horizon_days=30,
                                         algorithm="oracle", metrics={"roc_auc": 0.999}, is_serving=True)
    outcome = services.repurchase_train(as_of=as_of, horizon_days=30)
    assert not outcome.promoted and "Not promoted" in outcome.version.notes
    strong.refresh_from_db()
    assert strong.is_serving

    strong.metrics = {"roc_auc": 0.51}
    strong.save()
    again = services.repurchase_train(as_of=as_of, horizon_days=30)
    strong.refresh_from_db()
    assert again.promoted and not strong.is_serving
    assert ModelVersion.objects.filter(kind="repurchase", is_serving=True).get().pk == again.version.pk
    # Same data, same model: it does not beat itself (strictly better is required), so nothing changes.
    third = services.repurchase_train(as_of=as_of, horizon_days=30)
    assert not third.promoted and third.serving_auc_on_this_validation == again.version.metrics["roc_auc"]


def test_scores_carry_reasons_in_words_and_ignore_history_after_as_of(platform):
    as_of = platform.end - timedelta(days=40)
    version = services.repurchase_train(as_of=as_of, horizon_days=30).version
    assert services.propensity_score(as_of=as_of, version=version) == 180
    before = dict(PropensityScore.objects.filter(as_of=as_of).values_list("member_id", "probability"))
    reasons = PropensityScore.objects.filter(as_of=as_of).values_list("top_reasons", flat=True)
    assert all(0 < len(r) <= 3 for r in reasons)
    # Codes and figures are stored, never words; the words are rendered for whoever reads them.
    assert all("text" not in x and x["code"] == x["feature"] and x["effect"] in "+-" for r in reasons for x in r)
    shown = [reasons_display(r) for r in reasons]
    assert [len(s) for s in shown] == [len(r) for r in reasons]
    texts = " ".join(x["text"] for s in shown for x in s)
    assert "days" in texts

    append_future_history(as_of, platform.member_ids, platform.course_ids)
    services.propensity_score(as_of=as_of, version=version)
    after = dict(PropensityScore.objects.filter(as_of=as_of).values_list("member_id", "probability"))
    assert after == before
    # Retraining at the same as_of after the append gives the same validation figures.
    again = services.repurchase_train(as_of=as_of, horizon_days=30, promote=False).version
    assert not again.is_serving and "Not considered for promotion" in again.notes
    assert again.metrics["roc_auc"] == version.metrics["roc_auc"]
    assert again.baselines["bgnbd"]["roc_auc"] == version.baselines["bgnbd"]["roc_auc"]


def test_an_orders_only_platform_trains_and_scores(db):
    platform = make_platform(members=150, days=300, seed=5, orders_only=True)
    as_of = platform.end - timedelta(days=1)
    outcome = services.repurchase_train(as_of=as_of, horizon_days=30)
    assert outcome.version.metrics["roc_auc"] > 0.5
    assert services.propensity_score(as_of=as_of, version=outcome.version) == 150


def test_short_history_trains_on_a_shorter_window_and_records_it(db):
    platform = make_platform(members=120, days=110, seed=9)
    as_of = platform.start + timedelta(days=110)
    outcome = services.repurchase_train(as_of=as_of, horizon_days=90)
    version = outcome.version
    assert version.horizon_days < 90 and version.metrics["requested_horizon_days"] == 90
    assert "too short" in version.notes
    assert version.metrics["roc_auc"] > 0.55  # still a useful ranking


def _paths_meeting_a_feature_twice(model) -> int:
    """How many leaves of the model's trees lie below two nodes on the same feature."""
    count = 0
    for (tree,) in model._predictors:
        nodes = tree.nodes
        stack = [(0, ())]
        while stack:
            node, above = stack.pop()
            if nodes["is_leaf"][node]:
                count += len(above) != len(set(above))
                continue
            here = above + (int(nodes["feature_idx"][node]),)
            stack += [(int(nodes["left"][node]), here), (int(nodes["right"][node]), here)]
    return count


@pytest.mark.parametrize("reference", [{"a": 0.1, "b": 2.0, "c": 0.7, "d": 0.0},
                                       {"a": np.nan, "b": 0.0, "c": np.nan, "d": 5.0}],
                         ids=["numbers", "missing"])
def test_gradient_boosting_reasons_from_the_paths_are_the_plain_ablation_exactly(reference):
    """Missing values (each node learns where they go), a reference that is itself missing, and paths that meet the
    same feature twice: the effects from the walked paths are the floats of ablating through predict_proba."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(5)
    n = 4000
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.integers(0, 5, n).astype(float),
                      "c": rng.exponential(size=n), "d": rng.normal(size=n)})
    X.loc[rng.random(n) < 0.2, "a"] = np.nan
    X.loc[rng.random(n) < 0.1, "c"] = np.nan
    signal = (X["a"].fillna(-1).abs() < 0.5) ^ (X["b"] > 2) | (X["c"].fillna(3) > 1.5) & (X["d"] > 0)
    y = (signal ^ (rng.random(n) < 0.1)).astype(int)
    model = HistGradientBoostingClassifier(max_iter=60, max_leaf_nodes=15, min_samples_leaf=10,
                                           random_state=0).fit(X, y)
    assert _paths_meeting_a_feature_twice(model) > 0
    assert any(not t.nodes["missing_go_to_left"][~t.nodes["is_leaf"].astype(bool)].all() for (t,) in model._predictors)
    names = list(X.columns)
    reference = pd.Series(reference)
    base = model.predict_proba(X)[:, 1]
    plain = {}
    for name in names:
        ablated = X.copy()
        ablated[name] = reference[name]
        plain[name] = base - model.predict_proba(ablated)[:, 1]
    plain = pd.DataFrame(plain, index=X.index)

    by_path = repurchase._ablation_by_path(model, X, names, reference)

    assert by_path is not None
    pd.testing.assert_frame_equal(by_path, plain, check_exact=True)
    assert (plain != 0).sum().min() > 0  # every feature moves someone


def test_reasons_from_the_paths_leave_what_they_cannot_read_to_predict_proba():
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(2)
    X = pd.DataFrame({"a": rng.normal(size=600), "b": rng.integers(0, 3, 600)})
    reference = pd.Series({"a": 0.0, "b": 1})
    y = ((X["a"] > 0) ^ (X["b"] == 1)).astype(int)
    binary = HistGradientBoostingClassifier(max_iter=5, categorical_features=[1]).fit(X, y)
    assert all(tree.nodes["is_categorical"].any() for (tree,) in binary._predictors)
    three_classes = HistGradientBoostingClassifier(max_iter=5).fit(X, X["b"])
    assert repurchase._ablation_by_path(binary, X, ["a", "b"], reference) is None  # a categorical split
    assert repurchase._ablation_by_path(three_classes, X, ["a", "b"], reference) is None  # three trees a step
    assert repurchase._ablation_by_path(object(), X, ["a", "b"], reference) is None
