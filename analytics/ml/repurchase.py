"""Repurchase/renewal propensity: P(at least one paid order in the `horizon_days` after as_of).

Time-based validation only. With cutoff c and horizon h, a row is a member's features at c and the label is whether
they paid for anything in [c, c + h). The validation cutoff is as_of − h (its label window ends exactly at as_of);
training cutoffs are earlier, each with a label window ending on or before the validation cutoff, so nothing the
model trains on overlaps what it is judged on, and nothing at or after as_of is read at all.

Candidates: logistic regression (log1p + standardisation) and histogram gradient boosting; the better validation
ROC AUC wins. Calibration: Platt scaling fitted on a held-out 20% of training members (by member id), so the
validation Brier score is honest and the ranking (AUC) is unchanged by calibration.

Baselines on the same validation rows: a logistic regression on recency + frequency only, and BG/NBD
(Fader, Hardie & Lee 2005) fitted by maximum likelihood on each member's (x, t_x, T) at the validation cutoff;
its probability is P(alive) × P(at least one purchase in h | alive) with the posterior Gamma purchase rate.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from scipy import optimize, special
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from analytics.ml import datasets, features
from analytics.ml.runtime import limited_threads

ALGORITHMS = ("logistic_regression", "gradient_boosting")
MIN_HISTORY_DAYS = 30
MIN_LABEL_DAYS = 7
N_TRAIN_CUTOFFS = 4
CALIBRATION_SHARE = 0.2
SEED = 0


class InsufficientHistory(Exception):
    pass


# ---------------------------------------------------------------------------------------------------------------
# Planning the cutoffs


@dataclass(frozen=True)
class TrainingPlan:
    as_of: datetime
    requested_horizon_days: int
    horizon_days: int
    validation_cutoff: datetime
    train_cutoffs: list[datetime]
    data_start: datetime
    notes: str = ""


def plan(as_of: datetime, horizon_days: int, history_start: datetime | None, *, n_cutoffs: int = N_TRAIN_CUTOFFS) -> TrainingPlan:
    """Choose cutoffs. When history is shorter than two full label windows (one to train, one to validate) plus a
    minimum of feature history, the label window shrinks to the longest that fits, and the notes say so."""
    if history_start is None:
        raise InsufficientHistory("no orders, events or enrollments before as_of")
    day = timedelta(days=1)
    usable_days = (as_of - history_start).days - MIN_HISTORY_DAYS
    h = horizon_days
    notes = ""
    if 2 * h > usable_days:
        h = usable_days // 2
        if h < MIN_LABEL_DAYS:
            raise InsufficientHistory(
                f"only {(as_of - history_start).days} days of history before {as_of:%Y-%m-%d}; need at least "
                f"{MIN_HISTORY_DAYS + 2 * MIN_LABEL_DAYS}")
        notes = (f"History before {as_of:%Y-%m-%d} ({(as_of - history_start).days} days) is shorter than "
                 f"{MIN_HISTORY_DAYS} days of features plus two {horizon_days}-day label windows; trained and "
                 f"validated on {h}-day label windows instead (the longest that fit), so probabilities are for "
                 f"{h} days, not {horizon_days}.")
    validation_cutoff = as_of - h * day
    step = max(MIN_LABEL_DAYS, h // 2)
    earliest = history_start + MIN_HISTORY_DAYS * day
    train_cutoffs = [validation_cutoff - (h + k * step) * day for k in range(n_cutoffs)]
    train_cutoffs = [c for c in train_cutoffs if c >= earliest] or [validation_cutoff - h * day]
    return TrainingPlan(as_of, horizon_days, h, validation_cutoff, train_cutoffs, history_start, notes)


# ---------------------------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class LabelledFrame:
    cutoff: datetime
    X: pd.DataFrame
    y: pd.Series
    bgnbd: pd.DataFrame


def labelled_frame(cutoff: datetime, horizon_days: int) -> LabelledFrame:
    snap = datasets.snapshot(cutoff)
    X = features.build(snap)
    buyers = datasets.buyers_between(cutoff, cutoff + timedelta(days=horizon_days))
    y = pd.Series(X.index.isin(list(buyers)).astype(int), index=X.index, name="label")
    return LabelledFrame(cutoff, X, y, features.bgnbd_inputs(snap.orders, cutoff, X.index))


# ---------------------------------------------------------------------------------------------------------------
# Models


def regularisation_c(n_rows: int) -> float:
    """Inverse L2 strength for the logistic regression: stronger with fewer rows. A short history gives one early
    training cutoff whose members differ from the later ones (all of them new); a weakly regularised model chases
    that cutoff's quirks. Cross-validation inside one cutoff cannot see the shift, so the prior scales with data:
    C = rows / 20,000, within [0.01, 1]."""
    return float(np.clip(n_rows / 20000.0, 0.01, 1.0))


def build_pipeline(algorithm: str, n_rows: int = 20000) -> object:
    if algorithm == "logistic_regression":
        return Pipeline([
            ("log", FunctionTransformer(np.log1p)),
            ("scale", StandardScaler()),
            ("model", LogisticRegression(max_iter=3000, C=regularisation_c(n_rows))),
        ])
    if algorithm == "gradient_boosting":
        return HistGradientBoostingClassifier(max_iter=150, learning_rate=0.05, max_leaf_nodes=15,
                                              min_samples_leaf=40, l2_regularization=1.0, random_state=SEED)
    raise ValueError(f"unknown algorithm {algorithm!r}")


class PlattCalibrated:
    """A fitted classifier plus a monotone sigmoid on its logit: calibrated probabilities, unchanged ranking."""

    def __init__(self, model: object, feature_names: list[str]) -> None:
        self.model = model
        self.feature_names = feature_names
        self.a = 1.0
        self.b = 0.0

    @staticmethod
    def _logit(p: np.ndarray) -> np.ndarray:
        p = np.clip(p, 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p))

    def raw(self, X: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(X[self.feature_names])[:, 1]

    def fit_calibration(self, X: pd.DataFrame, y: pd.Series) -> PlattCalibrated:
        z = self._logit(self.raw(X)).reshape(-1, 1)
        if len(set(y)) == 2:
            lr = LogisticRegression(C=1e4, max_iter=1000).fit(z, y)
            if lr.coef_[0, 0] > 0:  # a non-increasing map would flip the ranking; keep identity instead
                self.a, self.b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        z = self.a * self._logit(self.raw(X)) + self.b
        p = 1.0 / (1.0 + np.exp(-z))
        return np.column_stack([1 - p, p])


def evaluate(y: np.ndarray | pd.Series, p: np.ndarray) -> dict[str, float]:
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    n = len(y)
    base = float(y.mean()) if n else 0.0
    two_classes = n > 0 and 0 < y.sum() < n
    top = max(1, round(n * 0.1))
    order = np.argsort(-p, kind="mergesort")
    top_rate = float(y[order[:top]].mean()) if n else 0.0
    return {
        "roc_auc": round(float(roc_auc_score(y, p)), 4) if two_classes else float("nan"),
        "average_precision": round(float(average_precision_score(y, p)), 4) if two_classes else float("nan"),
        "brier": round(float(brier_score_loss(y, p)), 4) if n else float("nan"),
        "lift_top_decile": round(top_rate / base, 3) if base > 0 else float("nan"),
        "base_rate": round(base, 4),
        "n": n,
        "positives": int(y.sum()),
    }


def reliability(y: pd.Series, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    frame = pd.DataFrame({"y": np.asarray(y), "p": p})
    frame["bin"] = np.minimum((frame["p"] * bins).astype(int), bins - 1)
    rows = frame.groupby("bin").agg(predicted=("p", "mean"), observed=("y", "mean"), n=("y", "size")).reset_index()
    return [{"bin": int(r.bin), "predicted": round(float(r.predicted), 4), "observed": round(float(r.observed), 4),
             "n": int(r.n)} for r in rows.itertuples()]


# ---------------------------------------------------------------------------------------------------------------
# BG/NBD


def _bgnbd_nll(log_params: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> float:
    r, alpha, a, b = np.exp(log_params)
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = special.gammaln(a + b) + special.gammaln(b + x) - special.gammaln(b) - special.gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) - (r + x) * np.log(alpha + tx), -np.inf)
    ll = a1 + a2 + np.logaddexp(a3, a4)
    # A tiny ridge on the log-parameters keeps the optimiser off the flat edges (as lifetimes' penalizer does).
    return float(-ll.sum() + 1e-3 * np.sum(log_params ** 2))


def bgnbd_fit(inputs: pd.DataFrame) -> dict[str, float]:
    buyers = inputs[inputs["buyer"] > 0]
    if len(buyers) < 5:
        return {"r": 1.0, "alpha": 1.0, "a": 1.0, "b": 1.0, "fitted": 0.0}
    x, tx, T = (buyers[c].to_numpy(dtype=float) for c in ("x", "t_x", "T"))
    T = np.maximum(T, 1e-3)
    result = optimize.minimize(_bgnbd_nll, x0=np.zeros(4), args=(x, tx, T), method="L-BFGS-B",
                               bounds=[(-8, 8)] * 4)
    r, alpha, a, b = np.exp(result.x)
    return {"r": float(r), "alpha": float(alpha), "a": float(a), "b": float(b), "fitted": 1.0}


def bgnbd_probability(params: dict[str, float], inputs: pd.DataFrame, horizon_days: int) -> np.ndarray:
    """P(alive at cutoff) × P(≥1 purchase within the horizon | alive); 0 for members who never bought."""
    r, alpha, a, b = params["r"], params["alpha"], params["a"], params["b"]
    x, tx, T = (inputs[c].to_numpy(dtype=float) for c in ("x", "t_x", "T"))
    t = horizon_days / 7.0
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        ratio = np.where(x > 0, a / np.maximum(b + x - 1, 1e-12) * ((alpha + T) / (alpha + tx)) ** (r + x), 0.0)
        p_alive = 1.0 / (1.0 + ratio)
        p_buy = 1.0 - ((alpha + T) / (alpha + T + t)) ** (r + x)
    p = np.nan_to_num(p_alive * p_buy, nan=0.0)
    return np.where(inputs["buyer"].to_numpy() > 0, p, 0.0)


# ---------------------------------------------------------------------------------------------------------------
# Training


RF_FEATURES = ["recency_days", "frequency"]


@dataclass
class TrainResult:
    plan: TrainingPlan
    algorithm: str
    model: PlattCalibrated
    metrics: dict[str, float]
    candidates: dict[str, dict[str, float]]
    baselines: dict[str, dict[str, float]]
    feature_importance: dict[str, float]
    calibration: list[dict[str, float]]
    validation: LabelledFrame
    train_rows: int
    extra: dict = field(default_factory=dict)


def _calibration_mask(index: pd.Index) -> np.ndarray:
    # By member id, not by row: the same member at two cutoffs never sits on both sides.
    return (np.asarray(index) * 2654435761 % 100) < CALIBRATION_SHARE * 100


def fit_and_validate(train_frames: list[LabelledFrame], validation: LabelledFrame, plan_: TrainingPlan) -> TrainResult:
    with limited_threads():
        return _fit_and_validate(train_frames, validation, plan_)


def _fit_and_validate(train_frames: list[LabelledFrame], validation: LabelledFrame, plan_: TrainingPlan) -> TrainResult:
    X = pd.concat([f.X for f in train_frames])
    y = pd.concat([f.y for f in train_frames])
    if y.nunique() < 2:
        raise InsufficientHistory("every training member had the same outcome; nothing to learn")
    calib = _calibration_mask(X.index)
    if y[~calib].nunique() < 2 or y[calib].nunique() < 2:
        calib = np.zeros(len(X), dtype=bool)
    fit_X, fit_y = X[~calib], y[~calib]
    cal_X, cal_y = (X[calib], y[calib]) if calib.any() else (X, y)
    Xv, yv = validation.X, validation.y

    candidates: dict[str, dict[str, float]] = {}
    fitted: dict[str, PlattCalibrated] = {}
    for algorithm in ALGORITHMS:
        model = build_pipeline(algorithm, n_rows=len(fit_X))
        model.fit(fit_X[features.FEATURES], fit_y)
        wrapped = PlattCalibrated(model, list(features.FEATURES)).fit_calibration(cal_X, cal_y)
        fitted[algorithm] = wrapped
        candidates[algorithm] = evaluate(yv, wrapped.predict_proba(Xv)[:, 1])
    best = max(ALGORITHMS, key=lambda a: (np.nan_to_num(candidates[a]["roc_auc"], nan=-1.0), a == "logistic_regression"))
    model = fitted[best]
    p_val = model.predict_proba(Xv)[:, 1]

    rf = Pipeline([("log", FunctionTransformer(np.log1p)), ("scale", StandardScaler()),
                   ("model", LogisticRegression(max_iter=1000))]).fit(X[RF_FEATURES], y)
    rf_p = rf.predict_proba(Xv[RF_FEATURES])[:, 1]
    bg_params = bgnbd_fit(validation.bgnbd)
    bg_p = bgnbd_probability(bg_params, validation.bgnbd, plan_.horizon_days)
    baselines = {"recency_frequency": evaluate(yv, rf_p), "bgnbd": {**evaluate(yv, bg_p), "params": {
        k: round(v, 4) for k, v in bg_params.items()}}}

    return TrainResult(
        plan=plan_, algorithm=best, model=model, metrics=candidates[best], candidates=candidates,
        baselines=baselines, feature_importance=importance(model, Xv, yv), calibration=reliability(yv, p_val),
        validation=validation, train_rows=len(X),
    )


def importance(model: PlattCalibrated, X: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    """LR: the coefficients (per standard deviation of log1p(feature)). GBM: mean absolute one-feature-ablation
    effect on a sample — the same quantity the member reasons use, so the two never disagree."""
    inner = model.model
    if isinstance(inner, Pipeline):
        coef = inner.named_steps["model"].coef_[0]
        return {f: round(float(c), 4) for f, c in sorted(zip(model.feature_names, coef), key=lambda t: -abs(t[1]))}
    sample = X.sample(n=min(len(X), 1000), random_state=SEED)
    art = {"model": model, "features": model.feature_names, "reference": X[model.feature_names].median().to_dict()}
    effect = contributions(art, sample).abs().mean()
    return {f: round(float(v), 4) for f, v in effect.sort_values(ascending=False).items()}


def train(as_of: datetime, horizon_days: int) -> TrainResult:
    plan_ = plan(as_of, horizon_days, datasets.history_start())
    train_frames = [labelled_frame(c, plan_.horizon_days) for c in plan_.train_cutoffs]
    validation = labelled_frame(plan_.validation_cutoff, plan_.horizon_days)
    return fit_and_validate(train_frames, validation, plan_)


def artifact(result: TrainResult) -> dict:
    X = pd.concat([result.validation.X])
    return {
        "model": result.model,
        "algorithm": result.algorithm,
        "features": list(features.FEATURES),
        "horizon_days": result.plan.horizon_days,
        "as_of": result.plan.as_of.isoformat(),
        "reference": X[features.FEATURES].median().to_dict(),
    }


# ---------------------------------------------------------------------------------------------------------------
# Scoring and reasons


def contributions(art: dict, X: pd.DataFrame) -> pd.DataFrame:
    """Per member and feature, how much the feature pushes this member's score up (+) or down (−).

    Logistic regression: coefficient × standardised value (exact in logit space). Gradient boosting: the change in
    predicted probability when that one feature is replaced by the population median (a one-feature ablation).
    """
    model: PlattCalibrated = art["model"]
    names = art["features"]
    inner = model.model
    if isinstance(inner, Pipeline):
        z = inner.named_steps["scale"].transform(inner.named_steps["log"].transform(X[names]))
        return pd.DataFrame(z * inner.named_steps["model"].coef_[0], index=X.index, columns=names)
    base = model.raw(X)
    out = {}
    reference = art["reference"]
    for name in names:
        # Only members whose value differs from the reference can have an effect; most features are zero for most
        # members (and so is their median), so this predicts on a small fraction of rows.
        differs = (X[name] != reference[name]).to_numpy()
        effect = np.zeros(len(X))
        if differs.any():
            ablated = X.loc[differs].copy()
            ablated[name] = reference[name]
            effect[differs] = base[differs] - model.raw(ablated)
        out[name] = effect
    return pd.DataFrame(out, index=X.index)


def _n(v: float) -> int:
    return round(v)


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


BUYER_ONLY = {"frequency", "frequency_90", "course_orders_90", "course_orders_total", "monetary", "avg_order_value",
              "ipi_mean", "ipi_std", "renewals_total"}


def reason_text(feature: str, row: dict | pd.Series) -> str | None:
    v = float(row[feature])
    n = _n(v)
    live = row["sub_live"] > 0
    if feature in BUYER_ONLY and not row["has_purchased"]:
        return None  # "average order 0" says nothing a "never bought" reason does not say better
    texts = {
        "recency_days": ((f"last purchase {_days(n)} ago" if n else "bought today") if row["has_purchased"]
                         else f"no purchase in {_days(n)} as a member"),
        "frequency": f"{n} paid orders in total",
        "frequency_90": f"{n} orders in the last 90 days",
        "course_orders_90": f"bought {n} courses in 90 days",
        "course_orders_total": f"bought {n} courses in total",
        "monetary": f"spent {v:,.0f} in total",
        "avg_order_value": f"average order {v:,.0f}",
        "ipi_mean": f"buys every {_days(n)} on average" if v else "only one purchase so far",
        "ipi_std": f"purchase gaps vary by {_days(n)}" if v else "steady purchase rhythm",
        "renewals_total": f"renewed {n} times",
        "has_purchased": "has bought before" if v else "never bought",
        "tenure_days": f"member for {_days(n)}",
        "sub_live": "active membership" if v else "no active membership",
        "sub_days_to_period_end": f"renewal due in {_days(n)}" if live else "no renewal due",
        "sub_cancel_pending": "membership set to cancel" if v else ("membership renews automatically" if live else None),
        "sub_yearly": ("yearly plan" if v else "monthly plan") if live else None,
        "sub_trialing": "on a free trial" if v else None,
        "sub_ever": "subscribed before" if v else "never subscribed",
        "tier_price": f"tier at {v:,.0f} a month" if live else None,
        "learning_7": f"{n} learning actions in 7 days",
        "learning_30": f"{n} learning actions in 30 days",
        "learning_90": f"{n} learning actions in 90 days",
        "community_ev_30": f"{n} community actions in 30 days",
        "community_ev_90": f"{n} community actions in 90 days",
        "email_30": f"{n} email opens or clicks in 30 days",
        "email_90": f"{n} email opens or clicks in 90 days",
        "purchase_ev_30": f"{n} shopping actions in 30 days",
        "events_30": f"{n} actions on the site in 30 days",
        "events_90": f"{n} actions on the site in 90 days",
        "days_since_last_event": f"last active {_days(n)} ago" if n else "active today",
        "lessons_7": f"completed {n} lessons in 7 days",
        "lessons_30": f"completed {n} lessons in 30 days",
        "lessons_90": f"completed {n} lessons in 90 days",
        "lessons_total": f"completed {n} lessons in total",
        "days_since_last_lesson": ((f"last lesson {_days(n)} ago" if n <= 7 else f"no lesson in {_days(n)}")
                                   if n else "completed a lesson today") if row["lessons_total"]
        else "never completed a lesson",
        "enrollments_total": f"enrolled in {n} courses",
        "courses_completed": f"finished {n} courses",
        "completion_rate": f"finishes {v:.0%} of enrolled courses",
        "posts_90": f"{n} posts in 90 days",
        "comments_90": f"{n} comments in 90 days",
        "reactions_90": f"{n} reactions in 90 days",
        "community_30": f"{n} community contributions in 30 days",
        "community_total": f"{n} community contributions in total",
        "coupons_redeemed": f"used {n} coupons",
        "coupon_share": f"{v:.0%} of orders with a coupon",
        "n_reviews_given": f"wrote {n} course reviews",
        "reviews_30": f"wrote {n} course reviews in the last 30 days",
        "reviews_90": f"wrote {n} course reviews in the last 90 days",
        "avg_rating_given": f"rates courses {v:.1f}★ on average" if v else None,
        "low_ratings_given": f"gave {n} low ratings (1–2★)",
        "avg_rating_of_purchased": f"courses bought are rated {v:.1f}★ on average" if v else None,
    }
    text = texts.get(feature)
    if text and n == 0:
        return _none_for_zero(text)
    return _singular(text) if text and n == 1 else text


ZERO_PHRASES = (("completed 0 lessons", "no lessons completed"), ("bought 0 courses", "no courses bought"),
                ("0 ", "no "), ("used 0 coupons", "never used a coupon"), ("finished 0 courses", "no course finished"),
                ("enrolled in 0 courses", "no enrollments"), ("renewed 0 times", "never renewed"),
                ("wrote 0 course reviews", "no course reviews"), ("gave 0 low ratings", "no low ratings"))


def _none_for_zero(text: str) -> str:
    """"0 actions on the site in 30 days" reads badly; say "no actions on the site in 30 days"."""
    for zero, none in ZERO_PHRASES:
        if text.startswith(zero):
            return none + text[len(zero):]
    return text


ONE_PLURALS = re.compile(
    r"(?<![\d.])1 ((?:paid |learning |community |shopping |email |course |low )?)"
    r"(orders|actions|opens or clicks|lessons|times|courses|coupons|reviews|ratings|posts|comments|reactions|contributions)\b"
)
SINGULARS = {"orders": "order", "actions": "action", "opens or clicks": "open or click", "lessons": "lesson",
             "times": "time", "courses": "course", "coupons": "coupon", "reviews": "review", "ratings": "rating",
             "posts": "post", "comments": "comment", "reactions": "reaction", "contributions": "contribution"}


def _singular(text: str) -> str:
    """"1 actions on the site in 30 days" reads badly; say "1 action on the site in 30 days"."""
    return ONE_PLURALS.sub(lambda m: f"1 {m.group(1)}{SINGULARS[m.group(2)]}", text)


def top_reasons(contrib: pd.DataFrame, X: pd.DataFrame, k: int = 3) -> list[list[dict]]:
    values = contrib.to_numpy()
    order = np.argsort(-np.abs(values), axis=1)[:, : k + 3]
    names = list(contrib.columns)
    out: list[list[dict]] = []
    for i, row in enumerate(X.to_dict("records")):
        reasons: list[dict] = []
        for j in order[i]:
            weight = float(values[i, j])
            if weight == 0:
                break
            text = reason_text(names[j], row)
            if text is None:
                continue
            reasons.append({"feature": names[j], "text": text, "effect": "+" if weight > 0 else "-",
                            "weight": round(weight, 4)})
            if len(reasons) == k:
                break
        out.append(reasons)
    return out


def score(art: dict, X: pd.DataFrame) -> pd.DataFrame:
    """Calibrated probability and top reasons for every row of X (already built at the scoring as_of)."""
    if X.empty:
        return pd.DataFrame(columns=["probability", "top_reasons"])
    with limited_threads():
        p = art["model"].predict_proba(X)[:, 1]
        reasons = top_reasons(contributions(art, X), X)
    return pd.DataFrame({"probability": np.round(p, 6), "top_reasons": reasons}, index=X.index)
