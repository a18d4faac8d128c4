"""Engagement score 0–100: time-decayed activity in four components, weighted, percentile-ranked.

Components (each a decayed count, log-damped so one binge does not dominate):
- learning: lessons completed + learning events, by 7/30/90-day bucket;
- community: posts, comments, reactions + community events;
- purchases: recency-decayed purchase history plus a live subscription;
- email: email_* events (opens, clicks) where the platform records them;
- reviews: course reviews written (visible ones, before as_of), by 30/90-day bucket — rating a course is a
  deliberate act of engagement with what the member bought.
Decay: activity counts are bucketed (0–7, 7–30, 30–90 days) and each bucket weighs 0.5 ** (midpoint / 14 days),
a 14-day half-life approximated per bucket so it can be computed from SQL counts.

Weights: learned where history allows — a logistic regression of "bought again in the next 90 days" on the
standardised components measured 90 days earlier; negative coefficients are clipped to zero (more activity never
lowers engagement), the rest normalised to sum to 1, then shrunk halfway (SHRINK) toward the hand weights: the
purchase component is collinear with the outcome and would otherwise take all the weight, silencing learning and
community, which the score exists to show. With too little history (fewer than MIN_ROWS members or
MIN_CLASS of either outcome) the documented HAND_WEIGHTS are used. The score is the member's percentile of the
weighted sum; members with no activity at all score 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from analytics.ml.runtime import limited_threads

COMPONENTS = ["learning", "community", "purchases", "email", "reviews"]
# Reviews are rare (a few per member a year), so they get a small hand weight; learned weights may move it.
HAND_WEIGHTS = {"learning": 0.33, "community": 0.18, "purchases": 0.29, "email": 0.12, "reviews": 0.08}
HALF_LIFE_DAYS = 14.0
LEARN_WINDOW_DAYS = 90
MIN_ROWS = 200
MIN_CLASS = 20
SHRINK = 0.5


def _w(midpoint_days: float) -> float:
    return 0.5 ** (midpoint_days / HALF_LIFE_DAYS)


def _decayed3(n7: pd.Series, n30: pd.Series, n90: pd.Series) -> pd.Series:
    return _w(3.5) * n7 + _w(18.5) * (n30 - n7).clip(lower=0) + _w(60) * (n90 - n30).clip(lower=0)


def _decayed2(n30: pd.Series, n90: pd.Series) -> pd.Series:
    return _w(15) * n30 + _w(60) * (n90 - n30).clip(lower=0)


def components(features: pd.DataFrame) -> pd.DataFrame:
    f = features
    learning = _decayed3(f["lessons_7"], f["lessons_30"], f["lessons_90"]) + _decayed3(
        f["learning_7"], f["learning_30"], f["learning_90"])
    community_90 = f["posts_90"] + f["comments_90"] + f["reactions_90"]
    community = _decayed2(f["community_30"], community_90) + _decayed2(f["community_ev_30"], f["community_ev_90"])
    purchases = f["has_purchased"] * (0.5 ** (f["recency_days"] / 30.0)) * np.log1p(f["frequency"]) + 0.5 * f["sub_live"]
    email = _decayed2(f["email_30"], f["email_90"])
    reviews = _decayed2(f["reviews_30"], f["reviews_90"])
    return pd.DataFrame({
        "learning": np.log1p(learning), "community": np.log1p(community), "purchases": purchases,
        "email": np.log1p(email), "reviews": np.log1p(reviews),
    }, index=features.index)


def _standardise(comps: pd.DataFrame) -> pd.DataFrame:
    # Scale without centring: zero activity stays exactly zero.
    scale = comps.std(ddof=0).replace(0, 1.0).fillna(1.0)
    return comps / scale


@dataclass(frozen=True)
class Weights:
    weights: dict[str, float]
    source: str  # "learned" or "hand"
    detail: str = ""


def learn_weights(earlier_components: pd.DataFrame, bought_after: pd.Series) -> Weights:
    """Weights from outcomes: components at an earlier cutoff vs. whether the member bought in the window after."""
    y = bought_after.reindex(earlier_components.index).fillna(0).astype(int)
    positives = int(y.sum())
    negatives = int(len(y) - positives)
    if len(y) < MIN_ROWS or positives < MIN_CLASS or negatives < MIN_CLASS:
        return Weights(dict(HAND_WEIGHTS), "hand",
                       f"too little history to learn weights ({len(y)} members, {positives} repurchased)")
    X = _standardise(earlier_components[COMPONENTS])
    with limited_threads():
        model = LogisticRegression(max_iter=1000).fit(X.to_numpy(), y.to_numpy())
    coef = np.clip(model.coef_[0], 0.0, None)
    if coef.sum() <= 0:
        return Weights(dict(HAND_WEIGHTS), "hand", "no component predicted repurchase; hand weights kept")
    coef = coef / coef.sum()
    blended = {c: (1 - SHRINK) * float(w) + SHRINK * HAND_WEIGHTS[c] for c, w in zip(COMPONENTS, coef)}
    return Weights({c: round(w, 4) for c, w in blended.items()}, "learned",
                   f"logistic regression on {len(y)} members, {positives} repurchased")


def score(comps: pd.DataFrame, weights: Weights) -> pd.DataFrame:
    """Percentile-ranked engagement 0–100 (members with no activity at all score 0)."""
    z = _standardise(comps[COMPONENTS])
    raw = sum(z[c] * weights.weights.get(c, 0.0) for c in COMPONENTS)
    raw = pd.Series(raw, index=comps.index, dtype=float).round(10)
    n = len(raw)
    if n == 0:
        return pd.DataFrame(columns=["score", "raw"])
    ranks = raw.rank(method="min")
    pct = (ranks - 1) / max(n - 1, 1) * 100.0
    pct[raw <= 0] = 0.0
    return pd.DataFrame({"score": pct.round(2), "raw": raw.round(6)}, index=comps.index)
