"""Repurchase/renewal propensity: P(at least one paid order in the `horizon_days` after as_of).

The training plan (plan()) never leaves the operator without scores:

- Rolling-origin windows. A window is (cutoff c, horizon h): features at c, label = paid in [c, c + h). Selection
  windows end on or before the validation cutoff V = as_of − h; refit windows are the same shape shifted to end on
  or before as_of (the latest fully labelled window is [as_of − h, as_of)). Nothing at or after as_of is read.
- Short history: when fewer than three full-horizon windows fit, shorter ones (h/2, h/4, ending at the anchor) are
  pooled in, with the horizon as a feature (`horizon_days`); only when even V does not fit is the horizon shrunk,
  and the model card says so.
- Candidates, all fitted on the selection windows and judged on the validation window (V, h): logistic regression
  and histogram gradient boosting on every feature, and the baselines — RFM logistic regression, BG/NBD (see
  btyd.py), and two rules with no training: recent activity (fewest days since any activity) and activity in the
  last 90 days. The pre-declared metric is validation ROC AUC; ties go to the simpler model (SIMPLICITY). Because
  the baselines are candidates, the served model is never worse than its own baselines on validation; when a
  baseline wins it is served, and the card says so. When nothing can be learned (no history, one class), the best
  baseline that needs no labels is served.
- The chosen model is then refitted on the refit windows before scoring: the selection windows shifted one horizon
  later, so the latest fully labelled window [as_of − h, as_of) is in and the shapes are the ones selected on.
  Gradient boosting's refit, the dearest, starts as soon as the refit windows exist, beside the candidates' fits
  (REFIT_AHEAD); it is served only if validation chooses gradient boosting.
- Probabilities: CalibratedClassifierCV (sigmoid) on the frozen fitted estimator, fitted on a held-out 20% of
  training members (by member id), so calibration never changes the ranking and never sees validation rows.
- Bootstrap CIs (paired, over validation members) for every metric and for the AUC difference ours − baseline.
"""
from __future__ import annotations

import json
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from django.conf import settings
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from analytics.ml import btyd, datasets, features, matrices
from analytics.ml.reasons import CONTEXT, PARAMS, silent
from analytics.ml.runtime import limited_threads

LEARNED = ("logistic_regression", "gradient_boosting")
BASELINES = ("rfm_logistic", "bgnbd", "recent_activity", "activity_90")
ALGORITHMS = LEARNED + BASELINES
SELECTION_METRIC = "roc_auc"
# Equal validation AUC: the simpler model wins (earlier in this tuple).
SIMPLICITY = ("recent_activity", "activity_90", "bgnbd", "rfm_logistic", "logistic_regression", "gradient_boosting")
# No labels to judge by: the first of these that can be built is served.
UNVALIDATED_ORDER = ("logistic_regression", "bgnbd", "recent_activity")
MODEL_FEATURES = [*features.FEATURES, "horizon_days"]
RFM_FEATURES = ["recency_days", "frequency", "monetary", "horizon_days"]
MIN_HISTORY_DAYS = 30
MIN_LABEL_DAYS = 7
N_TRAIN_CUTOFFS = 4
MIN_FULL_WINDOWS = 3
CALIBRATION_SHARE = 0.2
N_BOOTSTRAP = 200
SEED = 0
# Refitted on the refit windows as soon as they exist, in a thread of its own, before validation has chosen: the
# dearest refit (gradient boosting's, about as long as its candidate fit) then runs beside the candidates' fits
# instead of after them. Used only if validation chooses it; otherwise the thread ends on its own, unwaited.
REFIT_AHEAD = ("gradient_boosting",)


class InsufficientHistory(Exception):
    """Kept for callers that catch it; training no longer raises it (a data condition is never an error)."""


# ---------------------------------------------------------------------------------------------------------------
# Planning the windows


@dataclass(frozen=True)
class Window:
    cutoff: datetime
    horizon_days: int


@dataclass(frozen=True)
class TrainingPlan:
    as_of: datetime
    requested_horizon_days: int
    horizon_days: int
    validation_cutoff: datetime | None
    train_cutoffs: list[datetime]
    data_start: datetime | None
    notes: str = ""
    train_windows: tuple[Window, ...] = ()
    refit_windows: tuple[Window, ...] = ()

    @property
    def learnable(self) -> bool:
        return self.validation_cutoff is not None and bool(self.train_windows)


def _windows(anchor: datetime, h: int, earliest: datetime, n: int) -> list[Window]:
    """Full-horizon windows ending on or before `anchor`, one every max(7, h/2) days back; when fewer than
    MIN_FULL_WINDOWS fit, shorter windows (h/2, h/4) ending at the anchor are pooled in."""
    day = timedelta(days=1)
    step = max(MIN_LABEL_DAYS, h // 2)
    out = [Window(anchor - (h + k * step) * day, h) for k in range(n)]
    out = [w for w in out if w.cutoff >= earliest]
    if len(out) < MIN_FULL_WINDOWS:
        for short in (h // 2, h // 4):
            if short >= MIN_LABEL_DAYS and anchor - short * day >= earliest:
                out.append(Window(anchor - short * day, short))
    return out


def plan(as_of: datetime, horizon_days: int, history_start: datetime | None, *,
         n_cutoffs: int = N_TRAIN_CUTOFFS) -> TrainingPlan:
    day = timedelta(days=1)
    if history_start is None:
        return TrainingPlan(as_of, horizon_days, horizon_days, None, [], None,
                            f"No orders, events or enrolments before {as_of:%Y-%m-%d}: nothing to learn from; "
                            "serving the recent-activity rule, unvalidated.")
    earliest = history_start + MIN_HISTORY_DAYS * day
    usable = (as_of - history_start).days - MIN_HISTORY_DAYS
    h = horizon_days
    notes = ""
    if h > usable - MIN_LABEL_DAYS:
        h = usable // 2
        notes = (f"History before {as_of:%Y-%m-%d} ({(as_of - history_start).days} days) is too short for "
                 f"{MIN_HISTORY_DAYS} days of features, a {horizon_days}-day validation window and a training window; "
                 f"trained and validated on {h}-day label windows instead, so probabilities are for {h} days, "
                 f"not {horizon_days}.")
    if h < MIN_LABEL_DAYS:
        return TrainingPlan(as_of, horizon_days, max(h, 1), None, [], history_start,
                            f"Only {(as_of - history_start).days} days of history before {as_of:%Y-%m-%d}: too short "
                            "to learn from or to validate; serving the recent-activity rule, unvalidated.")
    validation_cutoff = as_of - h * day
    train = _windows(validation_cutoff, h, earliest, n_cutoffs)
    # The refit uses the same window shapes one horizon later, so the served model sees its data arranged exactly
    # as the model that won the selection did (a different arrangement moved a real platform's AUC by 0.07).
    refit = [Window(w.cutoff + h * day, w.horizon_days) for w in train]
    if any(w.horizon_days != h for w in train):
        notes = (notes + " " if notes else "") + (
            "Few full-horizon windows fit in the history: shorter label windows ("
            + ", ".join(sorted({f"{w.horizon_days} d" for w in train if w.horizon_days != h})) +
            ") were pooled in, with the horizon as a feature.")
    return TrainingPlan(as_of, horizon_days, h, validation_cutoff, [w.cutoff for w in train], history_start, notes,
                        tuple(train), tuple(refit))


# ---------------------------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class LabelledFrame:
    cutoff: datetime
    X: pd.DataFrame
    y: pd.Series
    horizon_days: int = 0


def labelled_frame(cutoff: datetime, horizon_days: int, rng: datasets.MemberRange = datasets.ALL) -> LabelledFrame:
    X = matrices.at(cutoff, rng)
    X["horizon_days"] = float(horizon_days)
    buyers = datasets.buyers_between(cutoff, cutoff + timedelta(days=horizon_days), rng)
    y = pd.Series(X.index.isin(list(buyers)).astype(int), index=X.index, name="label")
    return LabelledFrame(cutoff, X, y, horizon_days)


def unlabelled(X: pd.DataFrame, horizon_days: int) -> pd.DataFrame:
    """Scoring rows: the feature matrix at as_of with the horizon the model predicts for."""
    X = X.copy()
    X["horizon_days"] = float(horizon_days)
    return X


# ---------------------------------------------------------------------------------------------------------------
# Models


def regularisation_c(n_rows: int) -> float:
    """Inverse L2 strength for the logistic regressions: stronger with fewer rows (C = rows / 20,000 within
    [0.01, 1]); a few early windows of new members otherwise get their quirks learned."""
    return float(np.clip(n_rows / 20000.0, 0.01, 1.0))


def _logistic(n_rows: int) -> Pipeline:
    return Pipeline([
        ("log", FunctionTransformer(np.log1p)),
        ("scale", StandardScaler()),
        ("model", LogisticRegression(max_iter=3000, C=regularisation_c(n_rows))),
    ])


class RuleScore(ClassifierMixin, BaseEstimator):
    """A rule with nothing to train. recent_activity: fewer days since any activity (order, event, lesson,
    enrolment) scores higher. activity_90: more actions in the last 90 days (events, orders, lessons), ties broken
    by recency."""

    def __init__(self, rule: str = "recent_activity") -> None:
        self.rule = rule

    def fit(self, X: pd.DataFrame, y: object = None) -> RuleScore:
        self.classes_ = np.array([0, 1])
        return self

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        recency = -X["days_since_last_activity"].to_numpy(dtype=float)
        if self.rule == "recent_activity":
            return recency
        count = (X["events_90"] + X["frequency_90"] + X["lessons_90"]).to_numpy(dtype=float)
        return np.log1p(count) + 1e-4 * recency


class BGNBDScore(ClassifierMixin, BaseEstimator):
    """BG/NBD's P(alive) x P(buy within the row's horizon), parameters fitted on the rows' (x, t_x, T)."""

    def fit(self, X: pd.DataFrame, y: object = None) -> BGNBDScore:
        self.classes_ = np.array([0, 1])
        self.params_ = btyd.fit(self._inputs(X))
        return self

    @staticmethod
    def _inputs(X: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"x": X["bg_x"], "t_x": X["bg_t_x"], "T": X["bg_T"], "buyer": X["has_purchased"]})

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        return btyd.probability(self.params_, self._inputs(X), X["horizon_days"].to_numpy(dtype=float))


def _predict(self: object, X: pd.DataFrame) -> np.ndarray:
    # Only for scikit-learn's estimator checks (calibration wants a predict); the score is decision_function.
    score = self.decision_function(X)
    return (score > np.median(score)).astype(int) if len(score) else np.zeros(0, dtype=int)


RuleScore.predict = _predict  # type: ignore[attr-defined]
BGNBDScore.predict = _predict  # type: ignore[attr-defined]

RULE_FEATURES = {
    "recent_activity": ["days_since_last_activity"],
    "activity_90": ["events_90", "frequency_90", "lessons_90", "days_since_last_activity"],
    "bgnbd": ["bg_x", "bg_t_x", "bg_T", "has_purchased", "horizon_days"],
}


def build_estimator(algorithm: str, n_rows: int = 20000) -> tuple[object, list[str]]:
    if algorithm == "logistic_regression":
        return _logistic(n_rows), list(MODEL_FEATURES)
    if algorithm == "gradient_boosting":
        return HistGradientBoostingClassifier(max_iter=150, learning_rate=0.05, max_leaf_nodes=15,
                                              min_samples_leaf=40, l2_regularization=1.0,
                                              random_state=SEED), list(MODEL_FEATURES)
    if algorithm == "rfm_logistic":
        return _logistic(n_rows), list(RFM_FEATURES)
    if algorithm == "bgnbd":
        return BGNBDScore(), RULE_FEATURES["bgnbd"]
    if algorithm in ("recent_activity", "activity_90"):
        return RuleScore(algorithm), RULE_FEATURES[algorithm]
    raise ValueError(f"unknown algorithm {algorithm!r}")


def build_pipeline(algorithm: str, n_rows: int = 20000) -> object:
    return build_estimator(algorithm, n_rows)[0]


def _raw_scores(estimator: object, X: pd.DataFrame) -> np.ndarray:
    if hasattr(estimator, "predict_proba"):
        return estimator.predict_proba(X)[:, 1]
    return np.asarray(estimator.decision_function(X), dtype=float)


class Served:
    """A fitted estimator (learned model or baseline) with calibrated probabilities. `raw` is the estimator's own
    score (ranking); `predict_proba` maps it through the sigmoid fitted on held-out training members."""

    def __init__(self, name: str, model: object, feature_names: list[str],
                 fit_columns: list[str] | None = None) -> None:
        self.name = name
        self.model = model
        self.feature_names = feature_names
        # The columns the estimator was fitted on, where it was given only some of feature_names (_fit_columns);
        # None: all of them. Everything outside the estimator (ranges, reasons, importance) is of feature_names.
        self.fit_columns = fit_columns
        self.calibrator: CalibratedClassifierCV | None = None
        self.scale = (0.0, 1.0)  # uncalibrated fallback: logistic of the standardised score

    @property
    def model_columns(self) -> list[str]:
        """The columns the estimator reads, in its order (a model stored before fit_columns existed: all)."""
        return getattr(self, "fit_columns", None) or self.feature_names

    def _model_input(self, X: pd.DataFrame) -> pd.DataFrame:
        return X if getattr(self, "fit_columns", None) is None else X[self.fit_columns]

    def raw(self, X: pd.DataFrame) -> np.ndarray:
        return self.raw_clipped(self._clipped(X[self.feature_names]))

    def raw_clipped(self, clipped: pd.DataFrame) -> np.ndarray:
        """raw() of rows already clipped to the training range (_clipped), columns in feature_names' order."""
        return _raw_scores(self.model, self._model_input(clipped))

    def fit_range(self, X: pd.DataFrame) -> Served:
        """Remember each feature's training range: scoring clips to it, so a value never seen in training (a longer
        tenure, a bigger wholesaler) cannot be extrapolated linearly past everything the model was fitted on."""
        self.bounds = (X[self.feature_names].min(), X[self.feature_names].max())
        return self

    def _clipped(self, X: pd.DataFrame) -> pd.DataFrame:
        bounds = getattr(self, "bounds", None)
        return X if bounds is None else X.clip(lower=bounds[0], upper=bounds[1], axis=1)

    def fit_calibration(self, X: pd.DataFrame, y: pd.Series) -> Served:
        raw = self.raw(X)
        self.scale = (float(np.mean(raw)) if len(raw) else 0.0, float(np.std(raw)) or 1.0 if len(raw) else 1.0)
        smallest = int(pd.Series(y).value_counts().min()) if pd.Series(y).nunique() == 2 else 0
        if smallest >= 2:
            # The estimator is frozen, so the folds only decide which rows each sigmoid sees, never a refit.
            self.calibrator = CalibratedClassifierCV(FrozenEstimator(self.model), method="sigmoid",
                                                     cv=min(5, smallest), ensemble=False)
            self.calibrator.fit(X[self.model_columns], np.asarray(y))
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if self.calibrator is not None:
            # Clipping is per column: the estimator's columns of the clipped rows are its columns clipped.
            p = self.calibrator.predict_proba(self._model_input(self._clipped(X[self.feature_names])))[:, 1]
        else:
            p = 1.0 / (1.0 + np.exp(-(self.raw(X) - self.scale[0]) / self.scale[1]))
        return np.column_stack([1 - p, p])

    @property
    def calibrated(self) -> bool:
        return self.calibrator is not None


PlattCalibrated = Served  # the old name, for artifacts and callers that still say it


def _fast_auc(y: np.ndarray, p: np.ndarray) -> float:
    pos = y == 1
    n_pos = int(pos.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(p)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _lift(y: np.ndarray, p: np.ndarray) -> float:
    n = len(y)
    base = y.mean() if n else 0.0
    if base <= 0:
        return float("nan")
    top = max(1, round(n * 0.1))
    order = np.argsort(-p, kind="mergesort")
    return float(y[order[:top]].mean() / base)


def evaluate(y: np.ndarray | pd.Series, p: np.ndarray) -> dict[str, float]:
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    n = len(y)
    base = float(y.mean()) if n else 0.0
    two_classes = n > 0 and 0 < y.sum() < n
    lift = _lift(y, p) if n else float("nan")
    return {
        "roc_auc": round(float(roc_auc_score(y, p)), 4) if two_classes else float("nan"),
        "average_precision": round(float(average_precision_score(y, p)), 4) if two_classes else float("nan"),
        "brier": round(float(brier_score_loss(y, p)), 4) if n else float("nan"),
        "lift_top_decile": round(lift, 3) if lift == lift else float("nan"),
        "base_rate": round(base, 4),
        "n": n,
        "positives": int(y.sum()),
    }


def bootstrap(y: np.ndarray | pd.Series, scores: dict[str, np.ndarray], ours: str, *, n_boot: int = N_BOOTSTRAP,
              seed: int = SEED) -> dict[str, dict[str, list[float]]]:
    """Paired bootstrap over rows: 95% percentile intervals of AUC, AP, Brier and top-decile lift for every model,
    and of the AUC difference ours − model. The same resamples for every model, so differences are paired.

    Each model's scores are sorted once; a resample is a vector of row multiplicities (np.bincount of the drawn
    rows), so every metric is a weighted cumulative sum over the sorted rows instead of a sort per resample and
    model (`_Sorted`). The figures are those of sorting each resample (a test compares both)."""
    y = np.asarray(y, dtype=int)
    n = len(y)
    out: dict[str, dict[str, list[float]]] = {name: {} for name in scores}
    if n == 0 or y.sum() in (0, n):
        return out
    rng = np.random.default_rng(seed)
    draws: dict[str, dict[str, list[float]]] = {name: {m: [] for m in ("roc_auc", "average_precision", "brier",
                                                                         "lift_top_decile", "auc_diff")}
                                                 for name in scores}
    sorted_ = {name: _Sorted(y, np.asarray(p, dtype=float)) for name, p in scores.items()}
    top = max(1, round(n * 0.1))
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        yb = y[idx]
        positives = int(yb.sum())
        if positives in (0, n):
            continue
        weights = np.bincount(idx, minlength=n)
        aucs = {}
        for name, s in sorted_.items():
            auc, ap, brier, top_positives = s.metrics(weights, idx, top)
            aucs[name] = auc
            d = draws[name]
            d["roc_auc"].append(auc)
            d["average_precision"].append(ap)
            d["brier"].append(brier)
            d["lift_top_decile"].append(float((top_positives / top) / (positives / n)))
        for name in scores:
            draws[name]["auc_diff"].append(aucs[ours] - aucs[name])
    for name, d in draws.items():
        for metric, values in d.items():
            if values and not (name == ours and metric == "auc_diff"):
                lo, hi = np.nanpercentile(values, [2.5, 97.5])
                out[name][metric] = [round(float(lo), 4), round(float(hi), 4)]
    return out


class _Sorted:
    """One model's validation scores sorted once (descending, stable), with the groups of tied scores, so a
    bootstrap resample's AUC, average precision, Brier score and top-decile positives are weighted cumulative sums.

    The same quantities as on the resample itself: AUC is the area under the ROC curve through the tied groups
    (= the Mann–Whitney statistic with average ranks), average precision sklearn's step sum over distinct
    thresholds, and the top decile takes whole groups of higher scores plus, from the group that straddles the
    cut, its first members in resample order — what a stable sort of the resample puts first."""

    def __init__(self, y: np.ndarray, p: np.ndarray) -> None:
        self.y, self.p = y, p
        self.order = np.argsort(-p, kind="mergesort")
        self.ys = y[self.order]
        ps = p[self.order]
        self.ends = np.r_[np.flatnonzero(ps[1:] != ps[:-1]), len(ps) - 1]
        self.group_value = ps[self.ends]
        self.sq_err = (p - y) ** 2

    def metrics(self, weights: np.ndarray, idx: np.ndarray, top: int) -> tuple[float, float, float, int]:
        ws = weights[self.order]
        cum_all = np.cumsum(ws)[self.ends]
        cum_tp = np.cumsum(ws * self.ys)[self.ends]
        cum_fp = cum_all - cum_tp
        pos, neg = cum_tp[-1], cum_fp[-1]
        tpr = np.r_[0.0, cum_tp / pos]
        fpr = np.r_[0.0, cum_fp / neg]
        auc = float(np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1])) / 2)
        drawn = cum_all > 0
        precision = np.divide(cum_tp, cum_all, out=np.zeros(len(cum_all)), where=drawn)
        ap = float(np.sum(np.diff(np.r_[0.0, cum_tp / pos]) * precision))
        brier = float(np.dot(weights, self.sq_err) / len(idx))
        g = int(np.searchsorted(cum_all, top))  # the group in which the top `top` rows end
        before_all = int(cum_all[g - 1]) if g else 0
        before_tp = int(cum_tp[g - 1]) if g else 0
        rest = top - before_all
        tied = np.flatnonzero(self.p[idx] == self.group_value[g])[:rest]
        return auc, ap, brier, before_tp + int(self.y[idx[tied]].sum())


def reliability(y: pd.Series, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    frame = pd.DataFrame({"y": np.asarray(y), "p": p})
    frame["bin"] = np.minimum((frame["p"] * bins).astype(int), bins - 1)
    rows = frame.groupby("bin").agg(predicted=("p", "mean"), observed=("y", "mean"), n=("y", "size")).reset_index()
    return [{"bin": int(r.bin), "predicted": round(float(r.predicted), 4), "observed": round(float(r.observed), 4),
             "n": int(r.n)} for r in rows.itertuples()]


# BG/NBD, kept under its old names for callers and tests.
bgnbd_fit = btyd.fit
bgnbd_probability = btyd.probability


# ---------------------------------------------------------------------------------------------------------------
# Training


@dataclass
class TrainResult:
    plan: TrainingPlan
    algorithm: str
    model: Served
    metrics: dict[str, float]
    candidates: dict[str, dict[str, float]]
    baselines: dict[str, dict[str, float]]
    feature_importance: dict[str, float]
    calibration: list[dict[str, float]]
    validation: LabelledFrame | None
    train_rows: int
    extra: dict = field(default_factory=dict)
    refit_data: tuple[pd.DataFrame, pd.Series] | None = None  # the latest labelled windows, for fair peers


def _calibration_mask(index: pd.Index) -> np.ndarray:
    # By member id, not by row: the same member at two cutoffs never sits on both sides.
    return (np.asarray(index) * 2654435761 % 100) < CALIBRATION_SHARE * 100


def _fit_one(algorithm: str, X: pd.DataFrame, y: pd.Series) -> Served | None:
    """Fit on 80% of members, calibrate on the other 20%; None when a learned model has one class to learn."""
    learned = algorithm in LEARNED or algorithm == "rfm_logistic"
    if learned and y.nunique() < 2:
        return None
    # Calibrate on held-out members' rows of the longest (the served) horizon only: pooled shorter windows have
    # lower base rates and would pull the probabilities down.
    target = X["horizon_days"].to_numpy() == X["horizon_days"].max() if len(X) else np.zeros(0, dtype=bool)
    calib = _calibration_mask(X.index) & target
    if y[~calib].nunique() < 2 or y[calib].nunique() < 2 or calib.all() or not calib.any():
        calib = np.zeros(len(X), dtype=bool)
    fit_X, fit_y = X[~calib], y[~calib]
    cal_X, cal_y = (X[calib], y[calib]) if calib.any() else (X[target], y[target])
    estimator, names = build_estimator(algorithm, n_rows=len(fit_X))
    columns = _fit_columns(algorithm, fit_X, names)
    estimator.fit(fit_X[columns], fit_y)
    return (Served(algorithm, estimator, names, None if columns == names else columns)
            .fit_range(fit_X).fit_calibration(cal_X, cal_y))


# Fitted without the columns that hold one value on every row they are fitted on (_fit_columns).
SKIPS_CONSTANT_COLUMNS = ("gradient_boosting",)


def _fit_columns(algorithm: str, X: pd.DataFrame, names: list[str]) -> list[str]:
    """The columns `algorithm` is fitted on: for gradient boosting, those of `names` with more than one value in X
    (NaN counting as a value), in their order, or all of them if none has. A column with one value has one bin and
    no split, so no tree can use it, but the fit still builds its histogram at every node of every tree: on the
    benchmark's history 32 of the 72 columns are constant in the training windows (no lessons, posts or reviews),
    about half of each fit. The histograms, splits and early-stopping rows of the other columns do not depend on
    it, so the trees are the same and so is every prediction (tests/analytics/test_repurchase.py). Logistic
    regression keeps every column: its solver's sums run over all of them, and their order of addition would change."""
    if algorithm not in SKIPS_CONSTANT_COLUMNS:
        return names
    varying = [name for name in names if X[name].nunique(dropna=False) > 1]
    return varying or names


def _pick(candidates: dict[str, dict[str, float]], fitted: dict[str, Served], any_buyer: bool) -> tuple[str, bool]:
    """(name, validated): the best validation AUC, the simpler on ties; the pre-declared order without labels
    (BG/NBD only when someone has bought: it ranks non-buyers all alike)."""
    scored = {n: m[SELECTION_METRIC] for n, m in candidates.items() if m[SELECTION_METRIC] == m[SELECTION_METRIC]}
    if scored:
        best = max(scored.values())
        return min((n for n, v in scored.items() if v == best), key=SIMPLICITY.index), True
    usable = [n for n in UNVALIDATED_ORDER if n in fitted and (n != "bgnbd" or any_buyer)]
    return usable[0], False


def fit_and_validate(train_frames: list[LabelledFrame], validation: LabelledFrame | None, plan_: TrainingPlan,
                     refit_frames: list[LabelledFrame] | None = None,
                     fitted: dict[str, Served] | None = None,
                     ahead: RefitAhead | None = None) -> TrainResult:
    """`fitted`: the candidates already fitted on `train_frames` (fit_candidates), else they are fitted here.
    `ahead`: refits already started on `refit_frames` (refit_ahead); the chosen model's is taken from it."""
    with limited_threads():
        return _fit_and_validate(train_frames, validation, plan_, refit_frames, fitted, ahead)


def _concat(frames: list[LabelledFrame]) -> tuple[pd.DataFrame, pd.Series]:
    if not frames:
        return pd.DataFrame(columns=MODEL_FEATURES, dtype=float), pd.Series(dtype=int)
    return pd.concat([f.X for f in frames]), pd.concat([f.y for f in frames])


def fit_candidates(train_frames: list[LabelledFrame]) -> dict[str, Served]:
    """Every candidate fitted on the selection windows (what fit_and_validate does first), on its own: training
    runs it in a thread while it builds the validation and refit windows."""
    with limited_threads():
        return _fit_candidates(*_concat(train_frames))


def _fit_candidates(X: pd.DataFrame, y: pd.Series) -> dict[str, Served]:
    """Every algorithm that can be fitted, on the same rows, ANALYTICS_FIT_THREADS at a time. Each fit is
    single-threaded (limited_threads) and deterministic, and gradient boosting's and the solvers' numeric loops
    release the GIL, so the smaller candidates fit beside gradient boosting on a second core: the same models as
    fitted one after another (a test compares them)."""
    workers = max(1, int(getattr(settings, "ANALYTICS_FIT_THREADS", 1)))
    if workers == 1:
        fits = [_fit_one(name, X, y) for name in ALGORITHMS]
    else:
        def fit(name: str) -> Served | None:
            with limited_threads():  # OpenMP's thread count is per thread: set it in this one too
                return _fit_one(name, X, y)

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fit") as pool:
            fits = list(pool.map(fit, ALGORITHMS))
    return {name: served for name, served in zip(ALGORITHMS, fits, strict=True) if served is not None}


def _fit_and_validate(train_frames: list[LabelledFrame], validation: LabelledFrame | None, plan_: TrainingPlan,
                      refit_frames: list[LabelledFrame] | None, fitted: dict[str, Served] | None,
                      ahead: RefitAhead | None) -> TrainResult:
    X, y = _concat(train_frames)
    fitted = _fit_candidates(X, y) if fitted is None else fitted
    has_validation = validation is not None and len(validation.y) > 0
    candidates: dict[str, dict[str, float]] = {}
    val_scores: dict[str, np.ndarray] = {}
    if has_validation:
        for name, served in fitted.items():
            val_scores[name] = served.predict_proba(validation.X)[:, 1]
            candidates[name] = evaluate(validation.y, val_scores[name])
    best, validated = _pick(candidates, fitted, bool(len(X)) and bool((X["has_purchased"] > 0).any()))
    notes = []
    if y.nunique() < 2:
        notes.append("Every training member had the same outcome: no model could be learned.")
    if not validated:
        notes.append(f"No validation window with both outcomes: served {best} by the pre-declared order "
                     f"({', '.join(UNVALIDATED_ORDER)}), unvalidated.")
    elif best in BASELINES:
        notes.append(f"A baseline ({best}) had the best validation ROC AUC and is served.")
    ci = bootstrap(validation.y, val_scores, best) if has_validation and validated else {}

    # Refit the chosen model on the latest fully labelled windows before scoring.
    served = fitted[best]
    refit_rows = 0
    refit_data = None
    if refit_frames:
        # The refit windows' rows: already concatenated when a refit was started ahead.
        RX, Ry = ahead.rows if ahead is not None else _concat(refit_frames)
        refitted = ahead.fits[best].result() if ahead is not None and best in ahead.fits else _fit_one(best, RX, Ry)
        refit_data = (RX, Ry)
        if refitted is not None:
            served, refit_rows = refitted, len(RX)
    metrics = candidates.get(best) or evaluate(np.zeros(0), np.zeros(0))
    baselines = {n: {**m, "ci": ci.get(n, {})} for n, m in candidates.items() if n in BASELINES}
    for name in BASELINES:
        if name not in baselines and name != best:
            baselines[name] = {"skipped": "could not be fitted (one class)"}
    if isinstance(served.model, BGNBDScore) and "bgnbd" in baselines:
        baselines["bgnbd"]["params"] = {k: round(v, 4) for k, v in served.model.params_.items()}
    Xv = validation.X if has_validation else X
    yv = validation.y if has_validation else y
    return TrainResult(
        plan=plan_, algorithm=best, model=served, metrics={**metrics, "ci": ci.get(best, {})},
        candidates={n: {**m, "ci": ci.get(n, {})} for n, m in candidates.items()}, baselines=baselines,
        feature_importance=importance(served, Xv, yv) if len(Xv) else {},
        calibration=reliability(yv, val_scores[best]) if has_validation and best in val_scores else [],
        validation=validation, train_rows=len(X),
        extra={"validated": validated, "served_kind": "baseline" if best in BASELINES else "learned",
               "refit_rows": refit_rows, "notes": " ".join(notes), "calibrated": served.calibrated,
               "refit_cutoffs": [f"{w.cutoff:%Y-%m-%d}/{w.horizon_days}d" for w in plan_.refit_windows],
               "train_windows": [f"{w.cutoff:%Y-%m-%d}/{w.horizon_days}d" for w in plan_.train_windows]},
        refit_data=refit_data or (X, y),
    )


@dataclass(frozen=True)
class RefitAhead:
    """Refits started before validation has chosen (refit_ahead): the refit windows' rows and, per algorithm, its
    fit on them."""
    rows: tuple[pd.DataFrame, pd.Series]
    fits: dict[str, Future[Served | None]]


def refit_ahead(refit_frames: list[LabelledFrame]) -> RefitAhead | None:
    """Start REFIT_AHEAD's refits on the refit windows, each in a thread of its own, where training fits in
    threads (ANALYTICS_FIT_THREADS > 1). A refit is the same deterministic, single-threaded fit _fit_and_validate
    would run after validation (a test compares them). The threads are not joined: a refit validation does not
    choose ends on its own, and its result is dropped."""
    if not REFIT_AHEAD or not refit_frames or int(getattr(settings, "ANALYTICS_FIT_THREADS", 1)) < 2:
        return None
    rows = _concat(refit_frames)

    def refit(name: str) -> Served | None:
        with limited_threads():  # OpenMP's thread count is per thread: set it in this one too
            return _fit_one(name, *rows)

    pool = ThreadPoolExecutor(max_workers=len(REFIT_AHEAD), thread_name_prefix="refit-ahead")
    try:
        return RefitAhead(rows, {name: pool.submit(refit, name) for name in REFIT_AHEAD})
    finally:
        pool.shutdown(wait=False)


def fit_peer(algorithm: str, result: TrainResult) -> Served | None:
    """A baseline fitted on the same latest labelled windows the served model was refitted on."""
    X, y = result.refit_data if result.refit_data is not None else (None, None)
    return None if X is None else _fit_one(algorithm, X, y)


def importance(model: Served, X: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    """LR: the coefficients (per standard deviation of log1p(feature)). Others: mean absolute one-feature-ablation
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
    # The refit windows are the selection windows shifted one horizon later, so most of them are selection windows
    # too (with h = 30: 6 distinct cutoffs of 8): inside shared() each cutoff's matrix is built once. Every window
    # is of the training sample's members, so the one read of the orders and enrolments is of those members only
    # (a fifth of the bench's 102,000); inside a night's read_once, the night's read of everyone serves.
    plan_ = plan(as_of, horizon_days, datasets.history_start(as_of))
    sample = training_sample(plan_.validation_cutoff) if plan_.learnable else None
    with matrices.shared(), datasets.read_once(as_of, sample.rng if sample else datasets.ALL):
        return _train(plan_, sample)


def _train(plan_: TrainingPlan, sample: TrainingSample | None) -> TrainResult:
    h = plan_.horizon_days
    if sample is None:
        # Nothing to learn or validate on: the rule, fitted on the members as they are at as_of (no labels).
        X = unlabelled(matrices.at(plan_.as_of), h)
        frame = LabelledFrame(plan_.as_of, X, pd.Series(0, index=X.index, name="label"), h)
        return fit_and_validate([frame], None, plan_)

    def frame(cutoff: datetime, days: int) -> LabelledFrame:
        return labelled_frame(cutoff, days, sample.rng)

    # The selection windows first; the candidates are then fitted on them in a thread while the validation and
    # refit windows (two more cutoffs with h = 30) are built here. The fits spend their time in gradient boosting's
    # and the solvers' numeric loops, which release the GIL, beside the windows' pandas work, which holds it: the same
    # fits on the same windows, in less time.
    matrices.build_many([w.cutoff for w in plan_.train_windows], sample.rng)
    train_frames = [frame(w.cutoff, w.horizon_days) for w in plan_.train_windows]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="candidates") as pool:
        candidates = pool.submit(fit_candidates, train_frames)
        matrices.build_many([w.cutoff for w in plan_.refit_windows] + [plan_.validation_cutoff], sample.rng)
        validation = frame(plan_.validation_cutoff, h)
        refit_frames = [frame(w.cutoff, w.horizon_days) for w in plan_.refit_windows
                        if w.cutoff != plan_.validation_cutoff or w.horizon_days != h] + [validation]
        # Gradient boosting's refit, beside the candidates' fits rather than after validation (REFIT_AHEAD).
        ahead = refit_ahead(refit_frames)
        fitted = candidates.result()
    result = fit_and_validate(train_frames, validation, plan_, refit_frames, fitted, ahead)
    result.extra["train_sample"] = sample.record()
    if sample.rng.every > 1:
        result.extra["notes"] = " ".join(filter(None, [result.extra.get("notes"), sample.note()]))
    return result


@dataclass(frozen=True)
class TrainingSample:
    members: int
    every: int
    cap: int

    @property
    def rng(self) -> datasets.MemberRange:
        return datasets.MemberRange(every=self.every)

    def record(self) -> dict[str, int]:
        return {"members_at_validation_cutoff": self.members, "every": self.every, "cap": self.cap,
                "sampled_members_about": self.members // self.every}

    def note(self) -> str:
        return (f"Trained and validated on a sample of members: every member whose id is a multiple of {self.every} "
                f"(about {self.members // self.every:,} of {self.members:,}; cap {self.cap:,} per cutoff).")


def training_sample(cutoff: datetime) -> TrainingSample:
    """Above ANALYTICS_TRAIN_SAMPLE_MEMBERS members, train on a deterministic 1-in-`every` id sample: the windows'
    feature matrices cost time and memory in proportion to members, the model's quality stops improving long
    before 100,000 rows per cutoff. 0 disables sampling. Scoring always covers every member."""
    cap = int(getattr(settings, "ANALYTICS_TRAIN_SAMPLE_MEMBERS", 0) or 0)
    members = datasets.member_count(cutoff)
    every = -(-members // cap) if cap and members > cap else 1
    return TrainingSample(members, every, cap)


def artifact(result: TrainResult) -> dict:
    X = result.validation.X if result.validation is not None and len(result.validation.X) else None
    names = result.model.feature_names
    return {
        "model": result.model,
        "algorithm": result.algorithm,
        "features": list(names),
        "input_features": list(features.FEATURES),
        "horizon_days": result.plan.horizon_days,
        "as_of": result.plan.as_of.isoformat(),
        "reference": (X[names].median().to_dict() if X is not None else dict.fromkeys(names, 0.0)),
    }


# ---------------------------------------------------------------------------------------------------------------
# Scoring and reasons


def contributions(art: dict, X: pd.DataFrame) -> pd.DataFrame:
    """Per member and feature, how much the feature pushes this member's score up (+) or down (−).

    Logistic regression: coefficient × standardised value (exact in logit space). Gradient boosting: the change in
    predicted probability when that one feature is replaced by the population median (a one-feature ablation),
    from each member's paths through the trees where scikit-learn's fitted trees can be read (_ablation_by_path).
    """
    model: Served = art["model"]
    names = art["features"]
    inner = model.model
    if isinstance(inner, Pipeline):
        z = inner.named_steps["scale"].transform(inner.named_steps["log"].transform(X[names]))
        return pd.DataFrame(z * inner.named_steps["model"].coef_[0], index=X.index, columns=names)
    # model.raw clips every column to its training range; clipped once here, each ablation only clips the reference
    # value it sets (the same numbers: clipping is per column), instead of clipping the whole frame again per feature.
    clipped = model._clipped(X[names])
    reference = art["reference"]
    reference_clipped = model._clipped(pd.DataFrame({n: [reference[n]] for n in names})).iloc[0]
    # The estimator's columns only: a column it was not fitted on (Served.fit_columns) moves no path, and its effect
    # is exactly 0, as the walk over every column gave it.
    columns = getattr(model, "fit_columns", None) or names
    by_path = _ablation_by_path(inner, clipped[columns] if columns is not names else clipped, columns,
                                reference_clipped[columns])
    if by_path is not None:
        return by_path if columns is names else by_path.reindex(columns=names, fill_value=0.0)
    base = model.raw_clipped(clipped)
    out = {}
    split_on = _features_split_on(inner, columns)
    for name in names:
        # Only members whose value differs from the reference can have an effect; most features are zero for most
        # members (and so is their median), so this predicts on a small fraction of rows. A feature no tree splits
        # on changes no path, so its effect is exactly zero without predicting.
        differs = (X[name] != reference[name]).to_numpy()
        effect = np.zeros(len(X))
        if differs.any() and (split_on is None or name in split_on):
            ablated = clipped.loc[differs].copy()
            ablated[name] = reference_clipped[name]
            effect[differs] = base[differs] - model.raw_clipped(ablated)
        out[name] = effect
    return pd.DataFrame(out, index=X.index)


def _ablation_by_path(inner: object, clipped: pd.DataFrame, names: list[str],
                      reference_clipped: pd.Series) -> pd.DataFrame | None:
    """contributions() for a binary gradient boosting model: the same floats, computed from each member's paths.

    scikit-learn's probability is expit(baseline + tree_1(x) + tree_2(x) + …), added tree by tree in that order.
    Setting one feature to the reference changes a tree's value only for a member whose path through that tree meets
    a node on the feature where the member and the reference go different ways. Each tree is walked once for every
    member (_walk): the member's value, and for each feature the members whose path moves and the value they reach
    instead. For each feature the sum is then redone, in the same order, only for the members it moves, from the
    partial sum before the first tree in which it moves anyone; every addition is the one scikit-learn makes, so the
    effects are the same floats as ablating through predict_proba (a test compares them exactly). A member no path
    moves for a feature gets exactly 0, as the plain ablation's base − base. Session 16's by-tree ablation predicted
    each feature's trees again on every member whose value differs from the reference, most members for most
    features (bench/bench_scoring.py times this against the plain ablation).
    None where the fitted trees (private attributes) are not where they were, a tree splits on a categorical
    feature, or the model is not binary gradient boosting: contributions() then ablates through predict_proba."""
    predictors = getattr(inner, "_predictors", None) if isinstance(inner, HistGradientBoostingClassifier) else None
    if not predictors or any(len(iteration) != 1 for iteration in predictors):  # binary: one tree a step
        return None
    try:
        trees = [iteration[0].nodes for iteration in predictors]
        if any(nodes["is_categorical"].any() for nodes in trees):
            return None
        rows = np.asfortranarray(inner._preprocess_X(clipped, reset=False))  # the float64 array predict_proba reads
        baseline = inner._baseline_prediction
        n = len(rows)
        reference = np.array([reference_clipped[name] for name in names], dtype=rows.dtype)
        every = np.empty((len(trees), n), dtype=baseline.dtype)  # each tree's value, per member
        moved: dict[int, list[tuple[int, np.ndarray, np.ndarray]]] = {}  # feature -> (tree, members, their values)
        for t, nodes in enumerate(trees):
            every[t], members, feature, value = _walk(nodes, rows, reference)
            order = np.argsort(feature, kind="stable")
            members, feature, value = members[order], feature[order], value[order]
            bounds = np.flatnonzero(np.diff(feature)) + 1
            for part, f, values in zip(np.split(members, bounds), np.split(feature, bounds), np.split(value, bounds)):
                if len(part):
                    moved.setdefault(int(f[0]), []).append((t, part, values))
        # prefix[t]: the raw score before tree t, added as scikit-learn adds it (zeros, += baseline, += each tree).
        prefix = np.empty((len(trees) + 1, n), dtype=baseline.dtype)
        prefix[0] = 0.0
        prefix[0] += baseline[0]
        for t in range(len(trees)):
            np.add(prefix[t], every[t], out=prefix[t + 1])
        base = inner._loss.predict_proba(prefix[-1][:, None])[:, 1]
        out = {}
        position = np.empty(n, dtype=np.intp)
        for j, name in enumerate(names):
            effect = np.zeros(n)
            if parts := moved.get(j):
                hit = np.zeros(n, dtype=bool)
                for _, part, _ in parts:
                    hit[part] = True
                changed = np.flatnonzero(hit)
                position[changed] = np.arange(len(changed))
                first = parts[0][0]  # walked in tree order
                values = np.take(every[first:], changed, axis=1)  # the same gather as every[first:, changed], faster
                for t, part, reached in parts:
                    values[t - first, position[part]] = reached
                raw = prefix[first, changed]
                for tree_values in values:
                    raw += tree_values
                effect[changed] = base[changed] - inner._loss.predict_proba(raw[:, None])[:, 1]
            out[name] = effect
    except (AttributeError, KeyError, TypeError, ValueError, IndexError):
        return None
    return pd.DataFrame(out, index=clipped.index)


def _walk(nodes: np.ndarray, rows: np.ndarray, reference: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One fitted tree (scikit-learn's `nodes` array) on every row, as its predictor decides (NaN goes the way the
    node says, otherwise left when value <= threshold): each row's value; and, for each feature, the rows whose path
    changes when that feature alone takes its reference value, with the value they reach then (three aligned
    arrays: row, feature, value).

    Node by node, the rows at a node are split between its children. A row whose value goes the other way from the
    reference's at a node on feature f leaves the reference's path there: from that node on it is followed a
    second time, as (row, f), with f read as the reference. A node's rows all left the reference's path for f at an
    earlier node of f if the node lies on the far side of one (`left_for`): they are not started again."""
    feature, threshold = nodes["feature_idx"], nodes["num_threshold"]
    missing_left, leaf, value = nodes["missing_go_to_left"], nodes["is_leaf"], nodes["value"]
    children = (nodes["left"], nodes["right"])
    values = np.empty(len(rows), dtype=value.dtype)
    reached_rows, reached_features, reached_values = [], [], []
    empty = np.empty(0, dtype=np.intp)
    stack = [(0, np.arange(len(rows)), frozenset(), empty, empty)]
    while stack:
        node, at, left_for, moved, moved_feature = stack.pop()
        if leaf[node]:
            values[at] = value[node]
            if len(moved):
                reached_rows.append(moved)
                reached_features.append(moved_feature)
                reached_values.append(np.full(len(moved), value[node], dtype=value.dtype))
            continue
        f, cut, nan_left = int(feature[node]), threshold[node], bool(missing_left[node])
        left = _goes_left(rows[at, f], cut, nan_left)
        x = rows[moved, f]
        x[moved_feature == f] = reference[f]
        moved_left = _goes_left(x, cut, nan_left)
        reference_left = bool(_goes_left(reference[f:f + 1], cut, nan_left)[0])
        sides = [[at[left], left_for, moved[moved_left], moved_feature[moved_left]],
                 [at[~left], left_for, moved[~moved_left], moved_feature[~moved_left]]]
        if f not in left_for:
            reference_side, other = (sides[0], sides[1]) if reference_left else (sides[1], sides[0])
            leaving = other[0]  # on their own path they go to the other side: from here, as (row, f) on this one
            if len(leaving):
                reference_side[2] = np.concatenate([reference_side[2], leaving])
                reference_side[3] = np.concatenate([reference_side[3], np.full(len(leaving), f, dtype=np.intp)])
            other[1] = left_for | {f}
        for child, (child_at, child_left_for, child_moved, child_feature) in zip(children, sides):
            stack.append((int(child[node]), child_at, child_left_for, child_moved, child_feature))
    if not reached_rows:
        return values, empty, empty, np.empty(0, dtype=value.dtype)
    return (values, np.concatenate(reached_rows), np.concatenate(reached_features),
            np.concatenate(reached_values))


def _goes_left(x: np.ndarray, threshold: float, nan_left: bool) -> np.ndarray:
    """A numeric node's decision, as scikit-learn's predictor makes it: NaN goes where the node learned to send
    missing values, anything else left when it is <= the threshold."""
    return (x <= threshold) | np.isnan(x) if nan_left else x <= threshold


def _features_split_on(model: object, names: list[str]) -> set[str] | None:
    """The features a fitted gradient boosting model's trees split on (names in fit order); None for any other
    model, or when scikit-learn's fitted trees (a private attribute) are not where they were: then every feature
    is ablated. 34 of the 72 features on the benchmark's history (bench/bench_scoring.py prints the count)."""
    predictors = getattr(model, "_predictors", None) if isinstance(model, HistGradientBoostingClassifier) else None
    if not predictors:
        return None
    try:
        used: set[int] = set()
        for iteration in predictors:
            for tree in iteration:
                nodes = tree.nodes
                used.update(nodes["feature_idx"][nodes["is_leaf"] == 0].tolist())
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    return {names[i] for i in used if 0 <= i < len(names)}


@dataclass(frozen=True)
class _Chosen:
    """The reasons top_reasons keeps, one entry per kept reason, in member order and, within a member, strongest
    first: the member's row position, the feature's column, its effect, and its params' values (PARAMS order)."""

    members: int
    names: list[str]
    member: np.ndarray
    feature: np.ndarray
    weight: np.ndarray
    params: list[np.ndarray]


def _chosen_reasons(contrib: pd.DataFrame, X: pd.DataFrame, k: int) -> _Chosen:
    """Up to k reasons per member: the features with the largest |contribution|, walked in that order (at most
    k + 3 of them, stopping at the first with no effect), skipping a feature whose figure says nothing for this
    member (reasons.silent, e.g. an average order value for a member who never bought).

    Vectorised: the walk is decided for all members at once with array masks (a loop over members cost ≈ 0.1 ms
    each, 15 s for 100,000)."""
    n = len(contrib)
    names = list(contrib.columns)
    values = contrib.to_numpy()
    order = np.argsort(-np.abs(values), axis=1)[:, : k + 3]
    rows = np.arange(n)[:, None]
    weights = values[rows, order]
    figures = np.column_stack([X[name].to_numpy(dtype=float) for name in names])[rows, order]
    context = {key: X[key].to_numpy(dtype=float) for key in CONTEXT}
    # The stored figure is round(value, 4), and whether a reason says something is decided on what is stored.
    # Python's round, once per distinct figure (most figures are small counts that repeat across members).
    distinct, where = np.unique(figures, return_inverse=True)
    stored = np.array([round(v, 4) for v in distinct.tolist()])[where].reshape(figures.shape)
    live, bought = context["sub_live"].astype(bool), context["has_purchased"].astype(bool)
    says = np.ones(order.shape, dtype=bool)
    for j in range(order.shape[1]):
        for f in np.unique(order[:, j]):
            at = order[:, j] == f
            says[at, j] = ~silent(names[f], stored[at, j], live[at], bought[at])
    alive = np.cumprod(weights != 0, axis=1).astype(bool)  # the walk stops at the first feature with no effect
    eligible = alive & says
    chosen = eligible & (np.cumsum(eligible, axis=1) <= k)
    member, position = np.nonzero(chosen)
    # The reasons' figures column by column: reason_params(name, row) for each kept reason (the stored figure is
    # the row's value rounded as above; the test on column arrays compares them).
    params = [stored[member, position], *(context[key][member] for key in CONTEXT)]
    return _Chosen(n, names, member, order[member, position], weights[member, position], params)


def _reason(name: str, weight: float, params: tuple[float, ...]) -> dict:
    # The code (the feature) and its figures are stored; the words are rendered when someone reads them, in their
    # language (analytics.ml.reasons.reasons_display).
    return {"feature": name, "code": name, "params": dict(zip(PARAMS, params, strict=True)),
            "effect": "+" if weight > 0 else "-", "weight": round(weight, 4)}


def top_reasons(contrib: pd.DataFrame, X: pd.DataFrame, k: int = 3) -> list[list[dict]]:
    """Up to k reasons per member (_chosen_reasons), each {"feature", "code", "params", "effect", "weight"}."""
    if len(contrib) == 0:
        return []
    chosen = _chosen_reasons(contrib, X, k)
    out: list[list[dict]] = [[] for _ in range(chosen.members)]
    names = chosen.names
    for i, f, weight, params in zip(chosen.member.tolist(), chosen.feature.tolist(), chosen.weight.tolist(),
                                    zip(*(column.tolist() for column in chosen.params), strict=True), strict=True):
        out[i].append(_reason(names[f], weight, params))
    return out


# The JSON a night stores (scoring.services._db_json): json.dumps(value, ensure_ascii=False), one encoder.
_JSON = json.JSONEncoder(ensure_ascii=False)


def top_reasons_json(contrib: pd.DataFrame, X: pd.DataFrame, k: int = 3) -> list[str]:
    """top_reasons as the JSON text a night stores for each member: the same characters as
    json.dumps(top_reasons(...)[i], ensure_ascii=False), made by one %-template per reason instead of a dict per
    reason and the encoder's walk over them (bench/bench_scoring.py times both). json writes a finite float as its
    repr, which is what %r writes; a member with a NaN or an infinity among its figures (json spells them
    differently) goes through the encoder."""
    if len(contrib) == 0:
        return []
    chosen = _chosen_reasons(contrib, X, k)
    names = chosen.names
    heads = [f'{{"feature": {_JSON.encode(name)}, "code": {_JSON.encode(name)}, "params": {{' for name in names]
    tail = ", ".join(f"{_JSON.encode(param)}: %r" for param in PARAMS) + '}, "effect": "%s", "weight": %r}'
    weights = chosen.weight.tolist()
    columns = [column.tolist() for column in chosen.params]
    texts = [heads[f] + tail % (*params, "+" if weight > 0 else "-", round(weight, 4))
             for f, weight, *params in zip(chosen.feature.tolist(), weights, *columns, strict=True)]
    counts = np.bincount(chosen.member, minlength=chosen.members).tolist()
    out = []
    start = 0
    for count in counts:
        out.append("[" + ", ".join(texts[start:start + count]) + "]")
        start += count
    finite = np.isfinite(chosen.weight)
    for column in chosen.params:
        finite &= np.isfinite(column)
    if not finite.all():
        starts = np.concatenate([[0], np.cumsum(counts)]).tolist()
        features = chosen.feature.tolist()
        for i in np.unique(chosen.member[~finite]).tolist():
            out[i] = _JSON.encode([_reason(names[features[at]], weights[at], tuple(column[at] for column in columns))
                                   for at in range(starts[i], starts[i + 1])])
    return out


def score(art: dict, X: pd.DataFrame, *, as_json: bool = False) -> pd.DataFrame:
    """Calibrated probability and top reasons for every row of X (already built at the scoring as_of). as_json:
    each member's reasons as the JSON text a night stores (top_reasons_json) instead of a list of dicts."""
    if X.empty:
        return pd.DataFrame(columns=["probability", "top_reasons"])
    if "horizon_days" not in X.columns:
        X = unlabelled(X, art["horizon_days"])
    with limited_threads():
        p = art["model"].predict_proba(X)[:, 1]
        reasons = (top_reasons_json if as_json else top_reasons)(contributions(art, X), X)
    return pd.DataFrame({"probability": np.round(p, 6), "top_reasons": reasons}, index=X.index)
