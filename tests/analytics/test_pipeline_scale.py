"""The nightly pipeline's cost cuts keep its results: shared feature matrices, the training sample, cached reasons."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.ml import artifacts, datasets, features, matrices, repurchase
from analytics.ml.reasons import reason_params, reason_text
from analytics.models import JobRun, ModelVersion, PropensityScore, RecommendationRun
from analytics.scoring import services, tasks
from members.models import User
from tests.analytics.factories import make_platform


@pytest.fixture
def platform(db):
    return make_platform(members=90, days=260, seed=13)


def test_a_chunk_is_built_on_its_own_not_sliced_from_the_whole_population(platform):
    # The BG/NBD columns are fitted on the matrix's members, so a slice of the whole would differ from the chunk a
    # worker builds; the shared store must hand out the chunk as a worker would compute it.
    as_of = platform.end
    ids = sorted(platform.member_ids)
    chunk = datasets.MemberRange(ids[20], ids[60])
    alone = features.build(datasets.snapshot(as_of, chunk))
    with matrices.shared():
        whole = matrices.at(as_of)
        shared = matrices.at(as_of, chunk)
    pd.testing.assert_frame_equal(shared, alone)
    assert not whole.loc[alone.index, "bg_p_alive"].equals(alone["bg_p_alive"])


def test_a_chunk_given_the_population_bgnbd_parameters_is_the_slice_of_the_whole(platform, monkeypatch):
    as_of = platform.end
    ids = sorted(platform.member_ids)
    chunk = datasets.MemberRange(ids[20], ids[60])
    whole = features.build(datasets.snapshot(as_of))
    params = whole.attrs["bgnbd_params"]
    alone = features.build(datasets.snapshot(as_of, chunk), params)  # what a worker builds for the chunk
    pd.testing.assert_frame_equal(alone, whole.loc[alone.index])
    assert len(alone) == 40 and alone["bg_p_alive"].gt(0).any()
    calls = []
    real = datasets.snapshot
    monkeypatch.setattr(datasets, "snapshot", lambda *a, **k: calls.append(a) or real(*a, **k))
    with matrices.shared():
        matrices.at(as_of)
        sliced = matrices.at(as_of, chunk, params)  # inside a run: sliced from the matrix already built
    assert len(calls) == 1
    pd.testing.assert_frame_equal(sliced, alone)


def test_inside_shared_each_cutoff_is_built_once_and_handed_out_as_a_copy(platform, monkeypatch):
    calls = []
    real = datasets.snapshot
    monkeypatch.setattr(datasets, "snapshot", lambda *a, **k: calls.append(a) or real(*a, **k))
    with matrices.shared():
        first = matrices.at(platform.end)
        first["scribble"] = 1.0
        second = matrices.at(platform.end)
    assert len(calls) == 1 and "scribble" not in second.columns
    matrices.at(platform.end)  # outside the block nothing is kept
    assert len(calls) == 2


def test_a_sampled_range_keeps_every_nth_member_id(platform):
    ids = set(datasets.MemberRange(every=3).apply(User.objects.filter(is_staff=False), "id").values_list("id", flat=True))
    everyone = set(User.objects.filter(is_staff=False).values_list("id", flat=True))
    assert ids == {m for m in everyone if m % 3 == 0} and 0 < len(ids) < len(everyone)


def test_a_large_population_trains_on_a_recorded_sample_and_scores_everyone(platform, settings):
    settings.ANALYTICS_TRAIN_SAMPLE_MEMBERS = 30  # 90 members -> every 3rd member id
    outcome = services.repurchase_train(as_of=platform.end)
    sample = outcome.version.metrics["train_sample"]
    assert sample["every"] == 3 and sample["cap"] == 30
    assert "sample of members" in outcome.version.notes
    assert (outcome.result.validation.X.index % 3 == 0).all()
    services.propensity_score(as_of=platform.end, version=outcome.version)
    assert PropensityScore.objects.filter(model_version=outcome.version).count() == 90


def test_engagement_weights_are_learned_on_the_training_sample(platform, settings, monkeypatch):
    from analytics.ml import engagement

    seen = []
    real = engagement.learn_weights

    def learn(earlier, bought):
        seen.append((earlier.index, bought.index))
        result = real(earlier, bought)
        return engagement.Weights(result.weights, "learned", "logistic regression on some members")

    monkeypatch.setattr(engagement, "learn_weights", learn)
    settings.ANALYTICS_RELEARN_DAYS = 0
    settings.ANALYTICS_TRAIN_SAMPLE_MEMBERS = 30  # 90 members -> every 3rd member id
    weights = services.engagement_weights(platform.end)
    (members, buyers), = seen
    assert len(members) == 30 and (members % 3 == 0).all() and (buyers % 3 == 0).all() and len(buyers) > 0
    assert "multiple of 3, of 90" in weights.detail
    settings.ANALYTICS_TRAIN_SAMPLE_MEMBERS = 1000
    weights = services.engagement_weights(platform.end)
    assert len(seen[1][0]) == 90 and "multiple of" not in weights.detail


def test_no_sample_below_the_cap(platform, settings):
    settings.ANALYTICS_TRAIN_SAMPLE_MEMBERS = 1000
    outcome = services.repurchase_train(as_of=platform.end)
    assert outcome.version.metrics["train_sample"]["every"] == 1
    assert len(outcome.result.validation.X) == 90


def test_column_array_reasons_match_the_per_row_reasons(platform):
    outcome = services.repurchase_train(as_of=platform.end)
    art = {"model": outcome.result.model, "features": outcome.result.model.feature_names,
           "reference": outcome.result.validation.X[outcome.result.model.feature_names].median().to_dict()}
    X = repurchase.unlabelled(features.build(datasets.snapshot(platform.end)), 30)
    reasons = repurchase.top_reasons(repurchase.contributions(art, X), X)
    checked = 0
    for (_, row), member_reasons in zip(X.iterrows(), reasons):
        for reason in member_reasons:
            # top_reasons reads column arrays; the stored figures and their words are those of the member's row.
            assert reason["params"] == reason_params(reason["feature"], row)
            assert reason_text(reason["code"], reason["params"]) == reason_text(
                reason["feature"], reason_params(reason["feature"], row))
            assert reason_text(reason["code"], reason["params"]) is not None
            checked += 1
    assert checked > 90


@pytest.mark.parametrize("algorithm", ["gradient_boosting", "logistic_regression"])
def test_the_reasons_stored_as_json_are_the_text_of_the_reasons(platform, algorithm):
    """A night stores each member's reasons as top_reasons_json's text: the characters json.dumps writes for
    top_reasons' dicts, including a member whose figure is missing or infinite (json's NaN and Infinity) and a
    member with no reason at all."""
    outcome = services.repurchase_train(as_of=platform.end)
    model = (outcome.result.model if outcome.result.algorithm == algorithm
             else repurchase.fit_peer(algorithm, outcome.result))
    assert model is not None
    art = {"model": model, "features": model.feature_names, "horizon_days": 30,
           "reference": outcome.result.validation.X[model.feature_names].median().to_dict()}
    X = repurchase.unlabelled(features.build(datasets.snapshot(platform.end)), 30)
    contrib = repurchase.contributions(art, X)
    odd = X.copy()
    # A figure every reason carries, missing for one member and infinite for another; a third without reasons.
    odd.iloc[0, odd.columns.get_loc("lessons_total")] = np.nan
    odd.iloc[1, odd.columns.get_loc("lessons_total")] = np.inf
    odd_contrib = contrib.copy()
    odd_contrib.iloc[2] = 0.0
    for frame, effects in ((X, contrib), (odd, odd_contrib)):
        texts = repurchase.top_reasons_json(effects, frame)
        assert texts == [services._db_json(reasons) for reasons in repurchase.top_reasons(effects, frame)]
    assert "NaN" in texts[0] and "Infinity" in texts[1] and texts[2] == "[]"
    assert sum(text != "[]" for text in texts) > 80


def test_a_night_stores_the_same_reasons_as_the_scorer_gives(platform):
    version = services.model_for(platform.end, 30)
    services.propensity_score(as_of=platform.end, version=version)
    art = artifacts.load(version.artifact_path)
    X = matrices.at(platform.end)
    expected = repurchase.score(art, X)
    stored = dict(PropensityScore.objects.filter(model_version=version).values_list("member_id", "top_reasons"))
    assert len(stored) == len(expected) > 0
    assert all(stored[member] == reasons for member, reasons in expected["top_reasons"].items())


def test_the_nightly_task_sends_each_chunk_as_soon_as_it_can_run(platform, settings, monkeypatch):
    """The recommendation side (the blend, then every range's recommendations) is sent before the model and the
    scores, and both before engagement and segments, which the serial part computes while other workers take the
    chunks; the run becomes current only once all of them are done."""
    settings.ANALYTICS_CHUNK_SIZE = 40
    settings.ANALYTICS_NIGHT_PROCESSES = 1  # three ranges, not rounded up to a multiple of two processes
    order = []
    real_signature = tasks.chunk_signature
    monkeypatch.setattr(tasks, "chunk_signature", lambda kind, **kwargs: order.append(kind) or real_signature(
        kind, **kwargs))
    real_engagement = services.engagement_compute
    monkeypatch.setattr(services, "engagement_compute", lambda **kwargs: order.append("engagement") or
                        real_engagement(**kwargs))
    result = tasks.run_nightly_pipeline.delay(platform.end.isoformat()).get()
    assert result["chunks"] == 3
    # The recommendation side first, as one task (another worker chooses the blend and sends its chunks), then the
    # scores once the model exists, then engagement here.
    assert order == ["prepare_recommendations"] + ["recommend"] * 3 + ["score"] * 3 + ["engagement"]
    assert JobRun.objects.filter(job="score_members", status="succeeded").count() == 3
    assert ModelVersion.objects.filter(is_serving=True).count() == 1
    run = RecommendationRun.objects.get()
    assert run.is_current and run.params["night_done"] is True


def test_orders_and_enrolments_read_once_give_the_same_matrices_as_a_query_per_cutoff(platform, monkeypatch):
    # Refunds at different times: one refunded between two cutoffs counts at the earlier cutoff only, and a course
    # enrolment bought with it stays until the refund is known.
    from members.models import Order

    paid = list(Order.objects.filter(status=Order.Status.PAID, paid_at__isnull=False).order_by("id")[:12])
    assert len(paid) == 12
    for i, order in enumerate(paid):
        order.status = Order.Status.REFUNDED
        order.refunded_at = platform.end - pd.Timedelta(days=10 + 15 * i)
        order.save(update_fields=["status", "refunded_at"])
    cutoffs = [platform.end - pd.Timedelta(days=d) for d in (0, 20, 45, 90)]
    ranges = [datasets.ALL, datasets.MemberRange(every=2), datasets.MemberRange(min(platform.member_ids) + 10, None)]
    queried = {(c, r): features.build(datasets.snapshot(c, r)) for c in cutoffs for r in ranges}
    reads = []
    real = datasets._frame
    monkeypatch.setattr(datasets, "_frame", lambda rows, columns: reads.append(columns) or real(rows, columns))
    with datasets.read_once(platform.end):
        for key, expected in queried.items():
            pd.testing.assert_frame_equal(features.build(datasets.snapshot(*key)), expected)
        subs = datasets.subscriptions(cutoffs[1])
    assert sum("refunded_at" in columns for columns in reads) == 1  # one read of the orders for 12 snapshots
    assert datasets.ORDER_COLUMNS not in reads  # and no per-cutoff order query
    assert reads.count(datasets.ENROLLMENT_COLUMNS) == 1  # one read of the enrolments
    pd.testing.assert_frame_equal(subs, datasets.subscriptions(cutoffs[1]))


def test_a_member_range_covers_the_ranges_whose_members_are_all_in_it():
    every2, every4, every3 = (datasets.MemberRange(every=n) for n in (2, 4, 3))
    assert datasets.ALL.covers(every3) and every2.covers(every4) and every2.covers(datasets.MemberRange(5, 9, 2))
    assert not every2.covers(every3) and not every2.covers(datasets.ALL) and not every4.covers(every2)
    window = datasets.MemberRange(10, 20)
    assert window.covers(datasets.MemberRange(12, 20, 3)) and not window.covers(datasets.MemberRange(12, 21))
    assert not window.covers(datasets.MemberRange(None, 15)) and not window.covers(datasets.MemberRange(12, None))


def test_a_read_once_of_a_sample_serves_the_ranges_within_it_and_queries_the_others(platform, monkeypatch):
    from members.models import Order

    for i, order in enumerate(Order.objects.filter(status=Order.Status.PAID).order_by("id")[:8]):
        order.status, order.refunded_at = Order.Status.REFUNDED, platform.end - pd.Timedelta(days=10 + 20 * i)
        order.save(update_fields=["status", "refunded_at"])
    cutoffs = [platform.end - pd.Timedelta(days=d) for d in (0, 30, 75)]
    ids = sorted(platform.member_ids)
    ranges = [datasets.MemberRange(every=2), datasets.MemberRange(every=4), datasets.MemberRange(ids[10], ids[50], 2),
              datasets.ALL, datasets.MemberRange(every=3)]
    queried = {(c, r): features.build(datasets.snapshot(c, r)) for c in cutoffs for r in ranges}
    once = []
    real = datasets._frame

    def frame(rows, columns):
        result = real(rows, columns)
        if "refunded_at" in columns and "subscription_id" in columns or columns == datasets.ENROLLMENT_COLUMNS:
            once.append(result["member_id"])
        return result

    monkeypatch.setattr(datasets, "_frame", frame)
    with datasets.read_once(platform.end, datasets.MemberRange(every=2)):
        for key, expected in queried.items():
            pd.testing.assert_frame_equal(features.build(datasets.snapshot(*key)), expected)
    # One read of the orders of the sample's members and one of their enrolments; everyone and every 3rd id are
    # queried at each cutoff, as outside the block (their enrolment queries are the other reads counted here).
    orders, enrolled, *queried_enrolments = once
    assert len(orders) and (orders % 2 == 0).all() and len(enrolled) and (enrolled % 2 == 0).all()
    assert len(queried_enrolments) == 2 * len(cutoffs)


def test_a_read_once_given_another_processes_read_uses_it_only_for_the_same_cutoff_and_range(platform, monkeypatch):
    every2 = datasets.MemberRange(every=2)
    with datasets.read_once(platform.end, every2):
        made = datasets.once_reads()
        expected = datasets.orders(platform.end - pd.Timedelta(days=30), datasets.MemberRange(every=4))
    assert (made.orders["member_id"] % 2 == 0).all() and len(made.enrollments)
    reads, asked = [], []
    real = datasets._frame
    monkeypatch.setattr(datasets, "_frame", lambda rows, columns: reads.append(columns) or real(rows, columns))
    with datasets.read_once(platform.end, every2):
        datasets.expect_reads(lambda: asked.append(1) or made)
        assert asked == []  # asked only when first needed
        pd.testing.assert_frame_equal(
            datasets.orders(platform.end - pd.Timedelta(days=30), datasets.MemberRange(every=4)), expected)
        given = datasets.once_reads()
        assert given.orders is made.orders and given.enrollments is made.enrollments and asked == [1]
    assert reads == []
    for until, rng, source in ((platform.end - pd.Timedelta(days=1), every2, lambda: made),
                               (platform.end, datasets.ALL, lambda: made), (platform.end, every2, lambda: None)):
        with datasets.read_once(until, rng):
            datasets.expect_reads(source)
            datasets.once_reads()
        assert any("refunded_at" in columns for columns in reads)  # read here: made for something else, or none
        reads.clear()
    with pytest.raises(RuntimeError, match="inside a read_once block"):
        datasets.once_reads()


def test_training_reads_the_orders_and_enrolments_once_of_its_sample_and_trains_the_same_model(platform, settings,
                                                                                               monkeypatch):
    settings.ANALYTICS_TRAIN_SAMPLE_MEMBERS = 30  # 90 members -> every 3rd member id
    with datasets.read_once(platform.end):  # as inside a night: the night's one read of everyone serves
        everyone = repurchase.train(platform.end, 30)
    reads = []
    real = datasets._frame
    monkeypatch.setattr(datasets, "_frame", lambda rows, columns: reads.append((columns, rows)) or real(rows, columns))
    alone = repurchase.train(platform.end, 30)
    orders = [str(rows.query) for columns, rows in reads if "subscription_id" in columns and "refunded_at" in columns]
    assert len(orders) == 1 and "% 3" in orders[0].replace("%%", "%")
    assert sum(columns == datasets.ENROLLMENT_COLUMNS for columns, _ in reads) == 1
    assert datasets.ORDER_COLUMNS not in [columns for columns, _ in reads]
    assert alone.algorithm == everyone.algorithm and alone.candidates == everyone.candidates
    np.testing.assert_array_equal(alone.model.predict_proba(alone.validation.X),
                                  everyone.model.predict_proba(everyone.validation.X))


def test_json_objects_of_numbers_are_the_text_json_writes():
    """The nightly rows' JSON (engagement components, segment features) is built from a template; it must be the
    text json.dumps writes for every float, including the awkward ones, and json.dumps' for NaN and infinities."""
    import json

    import numpy as np

    from analytics.scoring.services import _db_json_objects

    rng = np.random.default_rng(3)
    values = np.concatenate([rng.normal(0, 1e6, 2000).round(4), rng.random(2000).round(2), [0.0, -0.0, 1e-7, 1e22,
                             5e-324, 0.1 + 0.2, 123456789.0, -1.5, float("nan"), float("inf"), -float("inf")]])
    names = ["learning", "community", "引号\"", "email"]
    rows = [[float(v) for v in rng.choice(values, len(names))] for _ in range(3000)]
    rows += [[float("nan"), 1.0, 2.0, 3.0], [1.0, float("inf"), 2.0, 3.0]]
    expected = [json.dumps(dict(zip(names, row)), ensure_ascii=False) for row in rows]
    assert _db_json_objects(names, np.array(rows)) == expected


def test_gradient_boosting_reasons_skip_features_no_tree_splits_on_and_stay_the_same(platform, monkeypatch):
    outcome = services.repurchase_train(as_of=platform.end)
    served = repurchase.fit_peer("gradient_boosting", outcome.result)
    names, columns = served.feature_names, served.model_columns  # columns: those it was fitted on
    split_on = repurchase._features_split_on(served.model, columns)
    assert split_on and len(split_on) < len(names)  # something to skip, something to ablate
    X = repurchase.unlabelled(features.build(datasets.snapshot(platform.end)), 30)
    art = {"model": served, "features": names,
           "reference": outcome.result.validation.X[names].median().to_dict()}
    # The plain one-feature ablation, every feature, through Served.raw (which clips each frame it is given).
    plain = {}
    base = served.raw(X)
    for name in names:
        differs = (X[name] != art["reference"][name]).to_numpy()
        effect = np.zeros(len(X))
        if differs.any():
            ablated = X.loc[differs].copy()
            ablated[name] = art["reference"][name]
            effect[differs] = base[differs] - served.raw(ablated)
        plain[name] = effect
    plain = pd.DataFrame(plain, index=X.index)
    # From the paths (the members each feature moves, the sum redone for them in scikit-learn's order): the same floats.
    by_path = repurchase._ablation_by_path(served.model, served._clipped(X[names])[columns], columns,
                                           served._clipped(pd.DataFrame({n: [art["reference"][n]] for n in names})).iloc[0])
    assert by_path is not None
    pd.testing.assert_frame_equal(by_path, plain[columns], check_exact=True)
    pd.testing.assert_frame_equal(repurchase.contributions(art, X), plain, check_exact=True)
    # Without the fitted trees where they were, through predict_proba: the features no tree splits on skipped.
    monkeypatch.setattr(repurchase, "_ablation_by_path", lambda *args: None)
    predicted = []
    real_raw = type(served).raw_clipped
    monkeypatch.setattr(type(served), "raw_clipped",
                        lambda self, frame: predicted.append(len(frame)) or real_raw(self, frame))
    pd.testing.assert_frame_equal(repurchase.contributions(art, X), plain, check_exact=True)
    assert len(predicted) <= len(split_on) + 1 < len(names)
    assert (plain[[n for n in names if n not in split_on]] == 0).all().all()
    # Any other model ablates every feature.
    assert repurchase._features_split_on(repurchase.fit_peer("logistic_regression", outcome.result).model, names) is None
