"""Segments: KMeans on RFM + engagement, k in 3..7 chosen by silhouette, clusters named from their centroids.

Naming rule (deterministic, on centroid ranks): each cluster's value = mean percentile rank of its centroid's
frequency, monetary, engagement and (inverted) recency. The best is "Champions"; with k >= 4 the cluster with the
shortest tenure, if under NEW_TENURE_DAYS, is "New"; the rest, best to worst, take names from NAME_LADDER.
Cluster numbers are renumbered by value (0 = best) so reruns on the same data give the same numbers.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import pairwise_distances_chunked
from sklearn.preprocessing import StandardScaler

from analytics.ml.runtime import limited_threads

SEGMENT_FEATURES = ["recency_days", "frequency", "monetary", "engagement", "tenure_days"]
K_RANGE = range(3, 8)
NEW_TENURE_DAYS = 90.0
SILHOUETTE_SAMPLE = 5000
# The silhouette sample's distances are made and read this many MB of rows at a time (scikit-learn's working_memory,
# whose default of 1 GB holds all 5,000 × 5,000 of them at once: 200 MB of fresh memory).
SILHOUETTE_WORKING_MB = 16
# Above this many members k-means is fitted on a fixed random sample and every member assigned to the nearest
# centroid: the centroids of 20,000 members are as good as of 100,000, and the fit is 5× cheaper.
FIT_SAMPLE = 20000
NAME_LADDER = {
    1: ["Lost"],
    2: ["At risk", "Lost"],
    3: ["Loyal", "At risk", "Lost"],
    4: ["Loyal", "Promising", "At risk", "Lost"],
    5: ["Loyal", "Promising", "At risk", "Hibernating", "Lost"],
    6: ["Loyal", "Promising", "Needs attention", "At risk", "Hibernating", "Lost"],
}


@dataclass(frozen=True)
class SegmentResult:
    k: int
    criterion_scores: dict[str, float]
    centroids: dict[str, dict[str, float]]
    labels: dict[str, str]
    assignments: pd.DataFrame  # index member_id: cluster, label
    notes: str = ""
    extra: dict = field(default_factory=dict)
    selected: bool = True  # k chosen here over K_RANGE; False: the k given was kept


def prepare(features: pd.DataFrame, engagement: pd.Series) -> pd.DataFrame:
    frame = features[["recency_days", "frequency", "monetary", "tenure_days"]].copy()
    frame["engagement"] = engagement.reindex(features.index).fillna(0.0)
    return frame[SEGMENT_FEATURES]


def _transform(frame: pd.DataFrame) -> np.ndarray:
    # log1p tames the long tails of money and counts so a few whales do not get a cluster each.
    logged = np.log1p(frame.to_numpy(dtype=float))
    return StandardScaler().fit_transform(logged)


def name_clusters(centroids: pd.DataFrame) -> dict[int, str]:
    ranks = pd.DataFrame({
        "frequency": centroids["frequency"].rank(pct=True),
        "monetary": centroids["monetary"].rank(pct=True),
        "engagement": centroids["engagement"].rank(pct=True),
        "recency": (-centroids["recency_days"]).rank(pct=True),
    })
    value = ranks.mean(axis=1)
    order = list(value.sort_values(ascending=False, kind="mergesort").index)
    names: dict[int, str] = {order[0]: "Champions"}
    rest = order[1:]
    if len(centroids) >= 4:
        newest = centroids.loc[rest, "tenure_days"].idxmin()
        if centroids.loc[newest, "tenure_days"] < NEW_TENURE_DAYS:
            names[newest] = "New"
            rest = [c for c in rest if c != newest]
    for cluster, name in zip(rest, NAME_LADDER.get(len(rest), NAME_LADDER[6] + ["Lost"] * len(rest))):
        names[cluster] = name
    return names


def fit(frame: pd.DataFrame, *, seed: int = 0, k: int | None = None) -> SegmentResult:
    """k: keep this number of clusters (chosen on an earlier night) instead of choosing over K_RANGE, the same
    clustering without a silhouette (criterion_scores empty). Falls back to choosing when k does not fit these
    members."""
    with limited_threads():
        kept = _fit(frame, seed=seed, ks=[k]) if k is not None else None
        result = kept if kept is not None else _fit(frame, seed=seed)
        if result is None:
            raise ValueError("no k in 3..7 split these members into two clusters or more")
        return result


def _fit(frame: pd.DataFrame, *, seed: int = 0, ks: list[int] | range = K_RANGE) -> SegmentResult | None:
    """The best k of `ks` by silhouette; None when none of them gives two clusters or more."""
    n = len(frame)
    if n < 8 or frame.drop_duplicates().shape[0] < 4:
        assignments = pd.DataFrame({"cluster": 0, "label": "All members"}, index=frame.index)
        centroid = {c: round(float(v), 4) for c, v in frame.mean().fillna(0).items()}
        return SegmentResult(1, {}, {"0": centroid}, {"0": "All members"}, assignments,
                             notes=f"only {n} members: too few to cluster")
    X = _transform(frame)
    scores: dict[str, float] = {}
    fits: dict[int, np.ndarray] = {}
    fit_rows = np.random.default_rng(seed).choice(n, size=FIT_SAMPLE, replace=False) if n > FIT_SAMPLE else slice(None)
    choosing = len(ks) > 1
    if choosing:
        # Every k's silhouette on the same SILHOUETTE_SAMPLE members, the rows silhouette_score(sample_size=,
        # random_state=seed) draws. A night that keeps an earlier night's k has nothing to choose and measures none.
        rows = np.random.RandomState(seed).permutation(n)[:min(n, SILHOUETTE_SAMPLE)]
    for k in ks:
        if k >= n:
            break
        labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(X[fit_rows]).predict(X)
        if len(set(labels)) < 2:
            continue
        fits[k] = labels
    if choosing and fits:
        scores = {str(k): round(score, 4) for k, score in silhouettes(X[rows], {k: fits[k][rows] for k in fits}).items()}
    if not fits:
        return None
    best_k = max(fits, key=lambda k: (scores[str(k)], -k)) if choosing else next(iter(fits))
    raw_labels = fits[best_k]
    centroids = frame.groupby(raw_labels).mean()
    names = name_clusters(centroids)
    # Renumber clusters best-first so numbers are stable and meaningful.
    value_order = sorted(centroids.index, key=lambda c: _ladder_position(names[c]))
    order = {c: i for i, c in enumerate(value_order)}
    assignments = pd.DataFrame({
        "cluster": [order[c] for c in raw_labels],
        "label": [names[c] for c in raw_labels],
    }, index=frame.index)
    return SegmentResult(
        k=best_k,
        criterion_scores=scores,
        centroids={str(order[c]): {f: round(float(v), 4) for f, v in centroids.loc[c].items()} for c in centroids.index},
        labels={str(order[c]): names[c] for c in centroids.index},
        assignments=assignments,
        notes=(f"k={best_k} chosen by the highest silhouette over k=3..7" if choosing
               else f"k={best_k} kept from the last choice (the silhouette is measured when k is chosen)"),
        selected=choosing,
    )


def silhouettes(X: np.ndarray, labels: dict[int, np.ndarray]) -> dict[int, float]:
    """silhouette_score(X, labels[k]) for every k, in one pass over X's distances (issue 19): each chunk of
    SILHOUETTE_WORKING_MB of rows of the distances, made by scikit-learn's pairwise_distances_chunked as
    silhouette_score makes them, is reduced for every k before the next is made. silhouette_score would make all of
    the sample's distances again for each k, and at 5,000 members hold them at once (its working memory is 1 GB):
    200 MB of fresh memory. Holding them once for every k took 0.77–0.79 s for the five silhouettes, one pass
    0.30–0.31 s (bench/bench_learning_steps.py --only silhouette). The arithmetic is silhouette_samples'
    (_chunk_sums is its _silhouette_reduce); within one chunk the figures are the same floats. A row's distances made
    in a smaller chunk can differ in the last bits (BLAS blocks the product by rows), as they do in silhouette_score
    whenever the sample outgrows its working memory: the figures are stored to 4 decimals, and a test compares them
    with silhouette_score's."""
    encoded = {}
    for k, values in labels.items():
        classes, codes = np.unique(values, return_inverse=True)
        if not 2 <= len(classes) <= len(values) - 1:  # silhouette_score's check_number_of_labels
            raise ValueError(f"Number of labels is {len(classes)}. Valid values are 2 to n_samples - 1 (inclusive)")
        encoded[k] = (codes, np.bincount(codes))

    def reduce(chunk: np.ndarray, start: int) -> tuple[np.ndarray, ...]:
        # Every k's two sums of the chunk's rows, k after k: (own, nearest, own, nearest, ...).
        return tuple(part for codes, freqs in encoded.values() for part in _chunk_sums(chunk, start, codes, freqs))

    chunks = pairwise_distances_chunked(X, reduce_func=reduce, working_memory=SILHOUETTE_WORKING_MB)
    sums = [np.concatenate(column) for column in zip(*chunks, strict=True)]
    out = {}
    for i, (k, (codes, freqs)) in enumerate(encoded.items()):
        a, b = sums[2 * i], sums[2 * i + 1]
        denom = (freqs - 1).take(codes, mode="clip")
        with np.errstate(divide="ignore", invalid="ignore"):
            a /= denom
        samples = b - a
        with np.errstate(divide="ignore", invalid="ignore"):
            samples /= np.maximum(a, b)
        out[k] = float(np.mean(np.nan_to_num(samples)))  # NaN: a cluster of one, whose silhouette is 0
    return out


def _chunk_sums(chunk: np.ndarray, start: int, codes: np.ndarray, freqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's _silhouette_reduce for a dense chunk of distances (rows start.. of the sample): each row's sum of
    distances to its own cluster, and its least mean distance to another cluster."""
    n = len(chunk)
    sums = np.zeros((n, len(freqs)), dtype=chunk.dtype)
    for i in range(n):
        sums[i] += np.bincount(codes, weights=chunk[i], minlength=len(freqs))
    own = (np.arange(n), codes[start:start + n])
    intra = sums[own]
    sums[own] = np.inf
    sums /= freqs
    return intra, sums.min(axis=1)


LADDER_ORDER = ["Champions", "Loyal", "Promising", "New", "Needs attention", "At risk", "Hibernating", "Lost"]


def _ladder_position(name: str) -> int:
    return LADDER_ORDER.index(name) if name in LADDER_ORDER else len(LADDER_ORDER)
