"""The held-out evaluation behind `manage.py evaluate_models`: everything is trained as of T = as_of − horizon (its
own model selection and refit happen before T), then judged on what happened in [T, as_of).

Repurchase: the served model (whatever train() picks, a baseline included) against RFM logistic regression, BG/NBD
and the recent-activity rules, each fitted on the same latest labelled windows; AUC, AP, Brier and top-decile lift
with paired bootstrap CIs, and the CI of the AUC difference.

Recommendations: the blend (weights tuned on the split before T: [T − h, T)) against popularity, time-decayed
popularity, "own items again, then popularity" and item-kNN; NDCG@k, hit@k, recall@k with bootstrap CIs over
members. Relevant = the items a member took up in the test window, minus owned items that cannot be bought again.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from analytics.ml import datasets, recommendations, repurchase
from analytics.ml.runtime import limited_threads

REPURCHASE_PEERS = ("rfm_logistic", "bgnbd", "recent_activity", "activity_90")


def repurchase_evaluation(as_of: datetime, horizon_days: int) -> dict:
    test_cutoff = as_of - timedelta(days=horizon_days)
    result = repurchase.train(test_cutoff, horizon_days)
    h = result.plan.horizon_days
    test = repurchase.labelled_frame(test_cutoff, h)
    with limited_threads():
        scores = {"ours": result.model.predict_proba(test.X)[:, 1]}
        for name in REPURCHASE_PEERS:
            peer = result.model if name == result.algorithm else repurchase.fit_peer(name, result)
            if peer is not None:
                scores[name] = peer.predict_proba(test.X)[:, 1]
        metrics = {name: repurchase.evaluate(test.y, p) for name, p in scores.items()}
        ci = repurchase.bootstrap(test.y, scores, "ours")
    return {
        "test_cutoff": test_cutoff, "horizon_days": h, "served": result.algorithm,
        "served_kind": result.extra.get("served_kind"), "notes": " ".join(filter(None, [result.plan.notes,
                                                                                          result.extra.get("notes")])),
        "validation": {n: m.get("roc_auc") for n, m in result.candidates.items()},
        "metrics": {name: {**m, "ci": ci.get(name, {})} for name, m in metrics.items()},
    }


@dataclass(frozen=True)
class CutoffData:
    """Everything the blend needs at one cutoff that does not depend on which members are scored: the catalogue,
    the purchase/enrolment events (datasets.course_events), the owned pairs and completions
    (datasets.course_interactions) — all three from one datasets.course_history read — and the item signals. Built
    once per cutoff (the nightly run keeps the as_of one per worker, analytics.scoring.services._model_for_run);
    `members(lo, hi)` hands a member-id range its rows by binary search, so a chunk costs what its members cost."""

    cutoff: datetime
    courses: pd.DataFrame
    events: pd.DataFrame        # member_id, course_id, at; sorted by member_id (stable)
    interactions: pd.DataFrame  # member_id, course_id, at, completed; one row per pair, sorted by member_id
    items: recommendations.ItemSignals

    def members(self, id_from: int | None, id_to: int | None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(events, interactions) of members with id in [id_from, id_to)."""
        return _id_slice(self.events, id_from, id_to), _id_slice(self.interactions, id_from, id_to)


def _id_slice(frame: pd.DataFrame, id_from: int | None, id_to: int | None) -> pd.DataFrame:
    ids = frame["member_id"].to_numpy()
    lo = 0 if id_from is None else int(np.searchsorted(ids, id_from, side="left"))
    hi = len(ids) if id_to is None else int(np.searchsorted(ids, id_to, side="left"))
    return frame.iloc[lo:hi]


def cutoff_data(cutoff: datetime, record: datasets.CourseRecord | None = None) -> CutoffData:
    """record: datasets.course_record(T) for some T >= cutoff when the caller has one (default: read at cutoff)."""
    history = datasets.course_history(cutoff, record=record)
    events = datasets.events_from(history)
    courses = datasets.courses(cutoff)
    # Item signals from the events in read order (their float sums are then those of item_signals(course_events)).
    items = recommendations.item_signals(courses, events, cutoff)
    return CutoffData(cutoff, courses, events.sort_values("member_id", kind="mergesort").reset_index(drop=True),
                      datasets.interactions_from(history), items)


def signals_at(cutoff: datetime, members: list[int], items: recommendations.ItemSignals | None = None,
               data: CutoffData | None = None) -> recommendations.Signals:
    """The blend's signals at a cutoff for these members, from the rows known before it (the evaluation's splits
    and the nightly serving build them here, the same way). data: cutoff_data(cutoff) when the caller has it (then
    only its rows for these members are read)."""
    data = data if data is not None else cutoff_data(cutoff)
    events, interactions = data.events, data.interactions
    if members:
        events, interactions = data.members(min(members), max(members) + 1)
    return recommendations.build_signals(data.courses, events, interactions[["member_id", "course_id"]], cutoff,
                                         members, items if items is not None else data.items)


def item_signals_at(cutoff: datetime) -> recommendations.ItemSignals:
    return cutoff_data(cutoff).items


def _split(cutoff: datetime, end: datetime, record: datasets.CourseRecord | None = None
           ) -> tuple[recommendations.Signals, dict[int, set[int]]]:
    new = datasets.new_interactions(cutoff, end)
    blocked = datasets.all_course_members(cutoff)
    members = sorted(set(new["member_id"].astype(int)) & set(datasets.members(cutoff)["member_id"].astype(int))
                     - blocked)
    sig = signals_at(cutoff, members, data=cutoff_data(cutoff, record))
    return sig, recommendations.truth_sets(new, sig)


def tuned_blend(as_of: datetime, horizon_days: int, k: int, record: datasets.CourseRecord | None = None) -> dict:
    """The blend served at as_of: weights tuned on the latest fully observed split before it (signals at
    as_of − horizon, truth in [as_of − horizon, as_of)), with the tuned blend's and the peers' NDCG@k there.
    `evaluate_models` calls this at its test cutoff and the nightly `recommend` at its as_of: one selection.
    record: datasets.course_record(T), T >= as_of − horizon, when the caller has one (the nightly run reads one at
    as_of for this split and its serving)."""
    validation_cutoff = as_of - timedelta(days=horizon_days)
    with limited_threads():
        sig, truth = _split(validation_cutoff, as_of, record)
        weights, ndcg, popularity = recommendations.tune(sig, truth, k)
        # The served blend and every peer on the whole validation split (tune() may have used a sample of it).
        configs = {"ours": (weights, popularity), **recommendations.PEER_WEIGHTS}
        validation = {}
        for name, (w, pop) in configs.items():
            per_member = recommendations.ranked_metrics(sig, recommendations.ranked(sig, w, k, pop), truth, k)
            validation[name] = {m: round(float(v.mean()), 4) if len(v) else None for m, v in per_member.items()}
            validation[name].update(users=len(truth), k=k)
    return {"weights": weights, "popularity": popularity, "validation_ndcg": round(ndcg, 4),
            "validation_cutoff": validation_cutoff, "validation_users": len(truth), "tuned": bool(truth), "k": k,
            "horizon_days": horizon_days, "validation": validation}


def recommendation_evaluation(as_of: datetime, horizon_days: int, k: int) -> dict:
    test_cutoff = as_of - timedelta(days=horizon_days)
    record = datasets.course_record(test_cutoff)  # one read for both splits (the validation one is earlier)
    blend = tuned_blend(test_cutoff, horizon_days, k, record)
    weights = blend["weights"]
    with limited_threads():
        sig, truth = _split(test_cutoff, as_of, record)
        ranked = {"ours": recommendations.ranked(sig, weights, k, blend["popularity"])}
        for name, (peer_weights, popularity) in recommendations.PEER_WEIGHTS.items():
            ranked[name] = recommendations.ranked(sig, peer_weights, k, popularity)
        out = {name: recommendations.summarise(recommendations.ranked_metrics(sig, r, truth, k))
               for name, r in ranked.items()}
    return {"test_cutoff": test_cutoff, "validation_cutoff": blend["validation_cutoff"], "k": k, "weights": weights,
            "popularity": blend["popularity"], "validation_ndcg": blend["validation_ndcg"], "items": len(sig.course_ids),
            "rebuyable_items": int(np.sum(sig.rebuyable)), "metrics": out}
