"""The paired bootstrap's intervals (repurchase.bootstrap) equal those of sorting every resample with sklearn."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from analytics.ml import repurchase


def _reference(y: np.ndarray, scores: dict[str, np.ndarray], ours: str, n_boot: int, seed: int) -> dict:
    """The straightforward bootstrap: each resample sorted and scored with sklearn."""
    n = len(y)
    rng = np.random.default_rng(seed)
    draws = {name: {m: [] for m in ("roc_auc", "average_precision", "brier", "lift_top_decile", "auc_diff")}
             for name in scores}
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        yb = y[idx]
        if yb.sum() in (0, n):
            continue
        aucs = {}
        for name, p in scores.items():
            pb = p[idx]
            aucs[name] = roc_auc_score(yb, pb)
            d = draws[name]
            d["roc_auc"].append(aucs[name])
            d["average_precision"].append(average_precision_score(yb, pb))
            d["brier"].append(float(np.mean((pb - yb) ** 2)))
            top = max(1, round(n * 0.1))
            order = np.argsort(-pb, kind="mergesort")
            d["lift_top_decile"].append(float(yb[order[:top]].mean() / yb.mean()))
        for name in scores:
            draws[name]["auc_diff"].append(aucs[ours] - aucs[name])
    out: dict = {name: {} for name in scores}
    for name, d in draws.items():
        for metric, values in d.items():
            if values and not (name == ours and metric == "auc_diff"):
                lo, hi = np.nanpercentile(values, [2.5, 97.5])
                out[name][metric] = [round(float(lo), 4), round(float(hi), 4)]
    return out


@pytest.mark.parametrize("n", [7, 60, 2000])
def test_bootstrap_equals_sorting_each_resample(n):
    gen = np.random.default_rng(n)
    y = (gen.random(n) < 0.2).astype(int)
    y[0], y[1] = 1, 0
    scores = {
        "continuous": np.clip(0.3 * y + gen.random(n) * 0.7, 0, 1),
        "few_ties": np.round(gen.random(n) * 0.5 + 0.3 * y, 1),  # ties everywhere, across the top decile
        "binary": (gen.random(n) < 0.5).astype(float),  # a rule: two values only
        "constant": np.full(n, 0.25),
    }
    got = repurchase.bootstrap(y, scores, "continuous", n_boot=120, seed=3)
    want = _reference(y, scores, "continuous", n_boot=120, seed=3)
    assert got == want


def test_bootstrap_differs_when_a_score_is_changed():
    gen = np.random.default_rng(1)
    y = (gen.random(500) < 0.3).astype(int)
    p = np.clip(0.3 * y + gen.random(500) * 0.7, 0, 1)
    a = repurchase.bootstrap(y, {"m": p}, "m", n_boot=50)
    b = repurchase.bootstrap(y, {"m": 1 - p}, "m", n_boot=50)
    assert a["m"]["roc_auc"] != b["m"]["roc_auc"]
