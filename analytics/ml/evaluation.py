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

from datetime import datetime, timedelta

import numpy as np

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


def _split(cutoff: datetime, end: datetime) -> tuple[recommendations.Signals, dict[int, set[int]]]:
    new = datasets.new_interactions(cutoff, end)
    blocked = datasets.all_course_members(cutoff)
    members = sorted(set(new["member_id"].astype(int)) & set(datasets.members(cutoff)["member_id"].astype(int))
                     - blocked)
    owned = datasets.course_interactions(cutoff)[["member_id", "course_id"]]
    sig = recommendations.build_signals(datasets.courses(cutoff), datasets.course_events(cutoff), owned, cutoff,
                                        members)
    return sig, recommendations.truth_sets(new, sig)


def recommendation_evaluation(as_of: datetime, horizon_days: int, k: int) -> dict:
    test_cutoff = as_of - timedelta(days=horizon_days)
    validation_cutoff = test_cutoff - timedelta(days=horizon_days)
    with limited_threads():
        val_sig, val_truth = _split(validation_cutoff, test_cutoff)
        weights, val_ndcg = recommendations.tune(val_sig, val_truth, k)
        sig, truth = _split(test_cutoff, as_of)
        ranked = {"ours": recommendations.top_k(sig, weights, k)}
        for name, (peer_weights, popularity) in recommendations.PEER_WEIGHTS.items():
            ranked[name] = recommendations.top_k(sig, peer_weights, k, popularity)
        out = {name: recommendations.summarise(recommendations.ranking_metrics(r, truth, k))
               for name, r in ranked.items()}
    return {"test_cutoff": test_cutoff, "validation_cutoff": validation_cutoff, "k": k, "weights": weights,
            "validation_ndcg": round(val_ndcg, 4), "items": len(sig.course_ids),
            "rebuyable_items": int(np.sum(sig.rebuyable)), "metrics": out}
