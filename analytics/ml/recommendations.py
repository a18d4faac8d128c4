"""Course recommendations: a hybrid of co-purchase/co-learning similarity, content similarity and popularity.

- Collaborative: the member×course matrix (purchases and enrollments before as_of, scipy.sparse) gives item–item
  cosine similarity; a member's affinity for a course is the mean similarity to the courses they have.
- Content: TF-IDF over character 2–3-grams (`char_wb`) of title, Chinese title, summary, description and tags, so
  Chinese text, which has no spaces between words, is compared as well as English.
- Popularity: interactions in the POPULARITY_DAYS before as_of (cold start, and a small prior for everyone).
- Rated highly: "members who rated X highly also liked Y" — cosine co-occurrence over the member×course matrix of
  high ratings (>= HIGH_RATING, visible reviews written and last edited before as_of); a member's affinity is the
  mean similarity to the courses they rated highly. Reviews are sparse, so it gets a small weight (W_RATED).
Score = W_CF·collaborative + W_CONTENT·content + W_POPULAR·popularity + W_RATED·rated-highly. Courses the member owns, and every course
for members whose tier grants all-course access, are never recommended. Each item carries its reason: the owned
course it is most similar to ("because_you_finished" when they completed it, else "similar_to_purchase"), or
"popular" when popularity outweighs the personal part or the member has no history, and
"rated_highly_also_liked" (with the course they rated highly) when that signal outweighs both.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

W_CF = 0.6
W_CONTENT = 0.25
W_POPULAR = 0.15
# Small on purpose: on the demo platform (ratings follow a hidden course quality, not member taste) the signal adds
# nothing measurable over co-purchase — 0.1 cost 0.003 NDCG@10, 0.05 is within one hit of no signal at all
# (docs/ML_RESULTS.md). Real ratings carry taste; raise it once a time-split evaluation shows a gain.
W_RATED = 0.05
HIGH_RATING = 4
W_OWN = 1.0
POPULARITY_DAYS = 90
CHUNK = 5000


@dataclass(frozen=True)
class RecModel:
    course_ids: np.ndarray
    titles: list[str]
    sim_cf: np.ndarray
    sim_content: np.ndarray
    popularity: np.ndarray
    as_of: datetime
    weights: tuple[float, float, float] = (W_CF, W_CONTENT, W_POPULAR)
    sim_rated: np.ndarray | None = None  # item–item cosine over high ratings; None when no ratings were given
    w_rated: float = W_RATED
    # Items some member bought again on a later day before as_of: an owner may be offered them again
    # ("buy_again"); every other owned item is never recommended. None: nothing is re-buyable.
    rebuyable: np.ndarray | None = None

    @property
    def index(self) -> dict[int, int]:
        return {int(c): i for i, c in enumerate(self.course_ids)}


def course_text(courses: pd.DataFrame) -> list[str]:
    def tags(value: object) -> str:
        return " ".join(str(t) for t in value) if isinstance(value, list | tuple) else str(value or "")

    parts = [courses[c].fillna("").astype(str) for c in ("title", "title_zh", "summary", "description", "topic")]
    text = parts[0]
    for part in parts[1:]:
        text = text + " " + part
    return (text + " " + courses["tags"].map(tags)).str.lower().tolist()


def content_similarity(courses: pd.DataFrame) -> np.ndarray:
    n = len(courses)
    if n == 0:
        return np.zeros((0, 0))
    texts = course_text(courses)
    if not any(t.strip() for t in texts):
        return np.zeros((n, n))
    tfidf = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3), min_df=1, sublinear_tf=True).fit_transform(texts)
    sim = (tfidf @ tfidf.T).toarray()
    np.fill_diagonal(sim, 0.0)
    return sim


def interaction_matrix(interactions: pd.DataFrame, member_index: pd.Index, index: dict[int, int]) -> sparse.csr_matrix:
    known = interactions[interactions["course_id"].isin(index.keys()) & interactions["member_id"].isin(member_index)]
    rows = member_index.get_indexer(known["member_id"])
    cols = known["course_id"].map(index).to_numpy()
    data = np.ones(len(known))
    return sparse.csr_matrix((data, (rows, cols)), shape=(len(member_index), len(index)))


def high_ratings(ratings: pd.DataFrame | None) -> pd.DataFrame:
    """The (member_id, course_id) pairs rated HIGH_RATING or more, in interaction_matrix's shape."""
    if ratings is None or ratings.empty:
        return pd.DataFrame({"member_id": pd.Series(dtype=int), "course_id": pd.Series(dtype=int)})
    return ratings.loc[ratings["rating"] >= HIGH_RATING, ["member_id", "course_id"]]


def rated_similarity(ratings: pd.DataFrame | None, index: dict[int, int]) -> np.ndarray | None:
    """Item–item cosine over the sparse member×course matrix of high ratings: how often members who rated X highly
    also rated Y highly, relative to how often each was rated highly."""
    high = high_ratings(ratings)
    if high.empty or not index:
        return None
    members = pd.Index(sorted(high["member_id"].unique()))
    H = interaction_matrix(high, members, index)
    Hn = normalize(H.tocsc().astype(float), norm="l2", axis=0)
    sim = (Hn.T @ Hn).toarray()
    np.fill_diagonal(sim, 0.0)
    return sim


def rebuyable_items(events: pd.DataFrame | None, index: dict[int, int]) -> np.ndarray | None:
    """Per item: did some member buy it again on a later day (events: member_id, course_id, at; repeats kept)."""
    if events is None or events.empty:
        return None
    days = events.assign(day=events["at"].dt.floor("D")).drop_duplicates(["member_id", "course_id", "day"])
    again = days.groupby(["member_id", "course_id"]).size()
    items = again[again > 1].reset_index()["course_id"].map(index).dropna().astype(int).unique()
    if not len(items):
        return None
    out = np.zeros(len(index), dtype=bool)
    out[items] = True
    return out


def fit(courses: pd.DataFrame, interactions: pd.DataFrame, as_of: datetime,
        weights: tuple[float, float, float] = (W_CF, W_CONTENT, W_POPULAR),
        ratings: pd.DataFrame | None = None, w_rated: float = W_RATED,
        events: pd.DataFrame | None = None) -> RecModel:
    """ratings: member_id, course_id, rating of the visible reviews known before as_of (datasets.course_ratings).
    events: every purchase/enrolment before as_of with repeats (datasets.course_events), for re-buyable items."""
    course_ids = courses["course_id"].to_numpy(dtype=int)
    index = {int(c): i for i, c in enumerate(course_ids)}
    members = pd.Index(sorted(interactions["member_id"].unique()))
    if len(course_ids) == 0 or len(members) == 0:
        sim_cf = np.zeros((len(course_ids), len(course_ids)))
    else:
        X = interaction_matrix(interactions, members, index)
        # Item–item cosine: normalise each course column, then C^T C. Items are few (hundreds), members many.
        Xn = normalize(X.tocsc().astype(float), norm="l2", axis=0)
        sim_cf = (Xn.T @ Xn).toarray()
        np.fill_diagonal(sim_cf, 0.0)
    recent = interactions[interactions["at"] >= pd.Timestamp(as_of - timedelta(days=POPULARITY_DAYS))]
    counts = recent["course_id"].map(index).dropna().astype(int).value_counts()
    all_counts = interactions["course_id"].map(index).dropna().astype(int).value_counts()
    pop = np.zeros(len(course_ids))
    pop[counts.index.to_numpy()] += counts.to_numpy()
    pop[all_counts.index.to_numpy()] += 0.01 * all_counts.to_numpy()  # all-time only breaks ties
    pop = pop / pop.max() if pop.max() > 0 else pop
    return RecModel(course_ids, courses["title"].astype(str).tolist(), sim_cf, content_similarity(courses), pop,
                    as_of, weights, rated_similarity(ratings, index), w_rated, rebuyable_items(events, index))


# Reasons are stored as codes (`reason`: because_you_finished, similar_to_purchase, popular, buy_again,
# rated_highly_also_liked) with the course that explains them (`reason_course_id`); the words are rendered at display
# time in the viewer's language (analytics/recommendations/selectors.py).


def recommend(model: RecModel, history: pd.DataFrame, member_ids: list[int], k: int,
              blocked: set[int] | None = None, popularity_only: bool = False,
              ratings: pd.DataFrame | None = None) -> pd.DataFrame:
    """Top-k per member. history: member_id, course_id, completed (what each member has before as_of).
    blocked: members with all-course access (nothing to recommend). popularity_only: the baseline.
    ratings: member_id, course_id, rating known before as_of (the members' own high ratings drive W_RATED)."""
    columns = ["member_id", "rank", "course_id", "score", "reason", "reason_course_id"]
    blocked = blocked or set()
    members = pd.Index([m for m in member_ids if m not in blocked])
    n_items = len(model.course_ids)
    if n_items == 0 or len(members) == 0:
        return pd.DataFrame(columns=columns)
    index = model.index
    w_cf, w_ct, w_pop = model.weights
    combined_sim = w_cf * model.sim_cf + w_ct * model.sim_content
    use_rated = model.sim_rated is not None and model.w_rated > 0 and not popularity_only
    high = high_ratings(ratings) if use_rated else high_ratings(None)
    frames = []
    for start in range(0, len(members), CHUNK):
        chunk = members[start:start + CHUNK]
        hist = history[history["member_id"].isin(chunk)]
        owned = interaction_matrix(hist, chunk, index)
        done = interaction_matrix(hist[hist["completed"].astype(bool)], chunk, index)
        n_owned = np.asarray(owned.sum(axis=1)).ravel()
        personal = np.zeros((len(chunk), n_items))
        if not popularity_only:
            personal = np.asarray(owned @ combined_sim) / np.maximum(n_owned, 1)[:, None]
        popular = w_pop * model.popularity[None, :] if not popularity_only else model.popularity[None, :]
        rated = np.zeros((len(chunk), n_items))
        liked = interaction_matrix(high[high["member_id"].isin(chunk)], chunk, index)
        n_liked = np.asarray(liked.sum(axis=1)).ravel()
        liked_dense = liked.toarray() > 0
        if use_rated:
            rated = model.w_rated * np.asarray(liked @ model.sim_rated) / np.maximum(n_liked, 1)[:, None]
        scores = personal + popular + rated
        owned_dense = owned.toarray() > 0
        again = np.zeros_like(owned_dense)
        if model.rebuyable is not None and not popularity_only:
            # Owned and re-buyable: offered again, ahead of what the member never had (W_OWN, as the evaluation's
            # tuned blend weighs own items on a re-buying platform: docs/ML_RESULTS.md).
            again = owned_dense & model.rebuyable[None, :]
            scores = scores + W_OWN * again
        scores[owned_dense & ~again] = -np.inf
        kk = min(k, n_items)
        top = np.argsort(-scores, axis=1, kind="mergesort")[:, :kk]
        done_dense = done.toarray() > 0
        for rank in range(kk):
            items = top[:, rank]
            item_scores = scores[np.arange(len(chunk)), items]
            valid = np.isfinite(item_scores)
            # Which owned course explains this item best.
            sims = np.where(owned_dense, combined_sim[:, items].T, -np.inf)
            because = np.argmax(sims, axis=1)
            personal_part = personal[np.arange(len(chunk)), items]
            popular_part = np.broadcast_to(popular, scores.shape)[np.arange(len(chunk)), items]
            is_personal = (personal_part > popular_part) & (n_owned > 0) & ~popularity_only
            finished = done_dense[np.arange(len(chunk)), because]
            reason = np.where(is_personal, np.where(finished, "because_you_finished", "similar_to_purchase"), "popular")
            reason_course = np.where(is_personal, model.course_ids[because], -1)
            bought_before = again[np.arange(len(chunk)), items]
            reason = np.where(bought_before, "buy_again", reason)
            reason_course = np.where(bought_before, model.course_ids[items], reason_course)
            if use_rated:
                # The high-rated course that explains this item best, when the rating signal is the largest part.
                rated_part = rated[np.arange(len(chunk)), items]
                by_rating = np.argmax(np.where(liked_dense, model.sim_rated[:, items].T, -np.inf), axis=1)
                is_rated = (rated_part > np.maximum(personal_part, popular_part)) & (n_liked > 0)
                reason = np.where(is_rated, "rated_highly_also_liked", reason)
                reason_course = np.where(is_rated, model.course_ids[by_rating], reason_course)
            frame = pd.DataFrame({
                "member_id": chunk.to_numpy(), "rank": rank + 1, "course_id": model.course_ids[items],
                "score": np.round(item_scores, 6), "reason": reason, "reason_course_id": reason_course,
            })[valid]
            frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=columns)
    out = pd.concat(frames, ignore_index=True).sort_values(["member_id", "rank"], kind="mergesort")
    out["reason_course_id"] = out["reason_course_id"].astype("Int64").where(out["reason_course_id"] >= 0)
    return out[columns].reset_index(drop=True)


def offline_metrics(recs: pd.DataFrame, truth: pd.DataFrame, k: int, catalogue_size: int,
                    eligible: int | None = None) -> dict[str, float]:
    """precision@k, recall@k, NDCG@k over members with at least one new course in the test window; catalogue
    coverage = share of the catalogue recommended to anyone."""
    relevant = truth.groupby("member_id")["course_id"].apply(set).to_dict()
    if not relevant:
        return {"precision": float("nan"), "recall": float("nan"), "ndcg": float("nan"),
                "coverage": 0.0, "users": 0, "k": k}
    by_member = recs[recs["rank"] <= k].sort_values(["member_id", "rank"]).groupby("member_id")["course_id"].apply(list)
    by_member = by_member.to_dict()
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    precision, recall, ndcg = [], [], []
    for member, items in relevant.items():
        ranked = by_member.get(member, [])
        hits = np.array([1.0 if c in items else 0.0 for c in ranked[:k]])
        n_hits = hits.sum()
        precision.append(n_hits / k)
        recall.append(n_hits / len(items))
        dcg = float((hits * discounts[: len(hits)]).sum())
        idcg = float(discounts[: min(len(items), k)].sum())
        ndcg.append(dcg / idcg if idcg else 0.0)
    recommended = recs.loc[recs["rank"] <= k, "course_id"].nunique()
    return {
        "precision": round(float(np.mean(precision)), 4),
        "recall": round(float(np.mean(recall)), 4),
        "ndcg": round(float(np.mean(ndcg)), 4),
        "coverage": round(recommended / catalogue_size, 4) if catalogue_size else 0.0,
        "users": len(relevant),
        "k": k,
    }


# ---------------------------------------------------------------------------------------------------------------
# The blend: candidate signals, peers, and weights tuned on a temporal validation split

DECAY_HALF_LIFE_DAYS = 30.0
OWN_HALF_LIFE_DAYS = 90.0
# Grid of (own, item-kNN, content, time-decayed popularity) weights tried on the validation split. It contains the
# peers themselves (popularity only; own items then popularity), so the tuned blend is never below them there.
BLEND_GRID = [(o, c, 0.0, p) for o in (0.0, 0.3, 1.0, 3.0) for c in (0.0, 0.3, 1.0) for p in (0.1, 0.3, 1.0)]
CONTENT_WEIGHTS = (0.1, 0.3)  # tried on the best of BLEND_GRID
MAX_ITEMS = 6000
TUNE_MEMBERS = 2000  # validation members the weights are tuned on (a seeded sample when there are more)
PEERS = ("popularity", "decayed_popularity", "own_then_popularity", "item_knn")


@dataclass(frozen=True)
class Signals:
    """Per-item and per-(member, item) signals at one cutoff, built from purchase/enrolment events before it."""

    course_ids: np.ndarray
    popularity: np.ndarray        # distinct buyers in the POPULARITY_DAYS before the cutoff, scaled to [0, 1]
    decayed: np.ndarray           # time-decayed purchase counts (half-life DECAY_HALF_LIFE_DAYS), scaled to [0, 1]
    rebuyable: np.ndarray         # bool per item: some member bought it again on a later day before the cutoff
    sim_cf: np.ndarray            # item–item cosine over members (co-purchase)
    sim_content: np.ndarray
    members: pd.Index
    own: sparse.csr_matrix        # member × item, time-decayed own purchases (half-life OWN_HALF_LIFE_DAYS)
    owned: sparse.csr_matrix      # member × item, 1 if owned at the cutoff


@dataclass(frozen=True)
class ItemSignals:
    """The per-item part of Signals at one cutoff (the same for every member): computed once per run and shared by
    every member chunk of it."""

    course_ids: np.ndarray
    popularity: np.ndarray
    decayed: np.ndarray
    rebuyable: np.ndarray
    sim_cf: np.ndarray
    sim_content: np.ndarray


def item_signals(courses: pd.DataFrame, events: pd.DataFrame, as_of: datetime) -> ItemSignals:
    """events: member_id, course_id, at — every purchase/enrolment before as_of (repeats kept: datasets
    .course_events)."""
    if len(courses) > MAX_ITEMS:
        # Item–item matrices are dense (n²): beyond MAX_ITEMS only the most taken-up items are candidates (a
        # 27,000-item catalogue would need 5.8 GB per matrix; the tail it drops is almost never anyone's next item).
        counts = events["course_id"].value_counts()
        keep = set(counts.index[:MAX_ITEMS].astype(int))
        courses = courses[courses["course_id"].isin(keep)]
    course_ids = courses["course_id"].to_numpy(dtype=int)
    index = {int(c): i for i, c in enumerate(course_ids)}
    ev = events[events["course_id"].isin(index.keys())]
    col = ev["course_id"].map(index).to_numpy(dtype=int)
    age = ((pd.Timestamp(as_of) - ev["at"]).dt.total_seconds() / 86400.0).to_numpy()
    n = len(course_ids)

    def scaled(v: np.ndarray) -> np.ndarray:
        return v / v.max() if len(v) and v.max() > 0 else v

    recent = ev[age < POPULARITY_DAYS]
    popularity = np.zeros(n)
    distinct = recent.drop_duplicates(["member_id", "course_id"])["course_id"].map(index).value_counts()
    popularity[distinct.index.to_numpy(dtype=int)] = distinct.to_numpy()
    decayed = np.bincount(col, weights=np.power(0.5, age / DECAY_HALF_LIFE_DAYS), minlength=n) if n else np.zeros(0)
    days = ev.assign(day=ev["at"].dt.floor("D")).drop_duplicates(["member_id", "course_id", "day"])
    again = days.groupby(["member_id", "course_id"]).size()
    rebuy_items = again[again > 1].reset_index()["course_id"].map(index).dropna().astype(int).unique()
    rebuyable = np.zeros(n, dtype=bool)
    rebuyable[rebuy_items] = True

    all_members = pd.Index(sorted(ev["member_id"].unique()))
    if n and len(all_members):
        X = sparse.csr_matrix((np.ones(len(ev)), (all_members.get_indexer(ev["member_id"]), col)),
                              shape=(len(all_members), n))
        X.data[:] = 1.0
        X.sum_duplicates()
        X.data[:] = 1.0
        Xn = normalize(X.tocsc(), norm="l2", axis=0)
        sim_cf = (Xn.T @ Xn).toarray()
        np.fill_diagonal(sim_cf, 0.0)
    else:
        sim_cf = np.zeros((n, n))
    return ItemSignals(course_ids, scaled(popularity) + 1e-6 * scaled(decayed),
                       scaled(decayed) + 1e-6 * scaled(popularity), rebuyable, sim_cf, content_similarity(courses))


def build_signals(courses: pd.DataFrame, events: pd.DataFrame, owned: pd.DataFrame, as_of: datetime,
                  members: list[int], items: ItemSignals | None = None) -> Signals:
    """events: member_id, course_id, at — every purchase/enrolment before as_of (repeats kept: datasets
    .course_events). owned: member_id, course_id — what each member holds at as_of. items: item_signals(courses,
    events, as_of) when the caller already has it (one per run, whatever the member chunk)."""
    items = items or item_signals(courses, events, as_of)
    course_ids = items.course_ids
    index = {int(c): i for i, c in enumerate(course_ids)}
    n = len(course_ids)
    member_index = pd.Index(members)
    mine = events[events["member_id"].isin(member_index) & events["course_id"].isin(index.keys())]
    own = sparse.csr_matrix(
        (np.power(0.5, ((pd.Timestamp(as_of) - mine["at"]).dt.total_seconds() / 86400.0).to_numpy()
                  / OWN_HALF_LIFE_DAYS),
         (member_index.get_indexer(mine["member_id"]), mine["course_id"].map(index).to_numpy(dtype=int))),
        shape=(len(member_index), n))
    held = owned[owned["member_id"].isin(member_index) & owned["course_id"].isin(index.keys())]
    owned_m = sparse.csr_matrix((np.ones(len(held)), (member_index.get_indexer(held["member_id"]),
                                                      held["course_id"].map(index).to_numpy(dtype=int))),
                                shape=(len(member_index), n))
    owned_m.data[:] = 1.0
    return Signals(course_ids, items.popularity, items.decayed, items.rebuyable, items.sim_cf, items.sim_content,
                   member_index, own, owned_m)


def _row_scaled(m: np.ndarray) -> np.ndarray:
    top = m.max(axis=1, keepdims=True)
    return np.divide(m, top, out=np.zeros_like(m), where=top > 0)


def blend_parts(sig: Signals, rows: slice, weights: tuple[float, float, float, float],
                popularity: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The weighted parts of the blend for members sig.members[rows] — own (re-buyable items the member bought,
    time-decayed), item-kNN, content, popularity — each scaled to [0, 1] per member before weighting; and the
    blocked mask (owned items that cannot be bought again)."""
    w_own, w_cf, w_ct, w_pop = weights
    owned = sig.owned[rows]
    shape = (owned.shape[0], len(sig.course_ids))
    n_owned = np.maximum(np.asarray(owned.sum(axis=1)).ravel(), 1)[:, None]
    pop = sig.decayed if popularity is None else popularity
    parts = {"popularity": np.broadcast_to(w_pop * pop[None, :], shape)}
    if w_own:
        parts["own"] = w_own * _row_scaled((sig.own[rows].toarray()) * sig.rebuyable[None, :])
    if w_cf:
        parts["item_knn"] = w_cf * _row_scaled(np.asarray(owned @ sig.sim_cf) / n_owned)
    if w_ct:
        parts["content"] = w_ct * _row_scaled(np.asarray(owned @ sig.sim_content) / n_owned)
    blocked = owned.toarray().astype(bool) & ~sig.rebuyable[None, :]
    return parts, blocked


def blend_scores(sig: Signals, rows: slice, weights: tuple[float, float, float, float],
                 popularity: np.ndarray | None = None) -> np.ndarray:
    """Scores for members sig.members[rows]: w_own·own + w_cf·item-kNN + w_content·content + w_pop·popularity
    (each part scaled to [0, 1] per member); owned items that are not re-buyable are -inf."""
    parts, blocked = blend_parts(sig, rows, weights, popularity)
    scores = sum(parts.values()).copy()
    scores[blocked] = -np.inf
    return scores


PEER_WEIGHTS = {
    "popularity": ((0.0, 0.0, 0.0, 1.0), "popularity"),
    "decayed_popularity": ((0.0, 0.0, 0.0, 1.0), "decayed"),
    "own_then_popularity": ((1000.0, 0.0, 0.0, 1.0), "popularity"),
    "item_knn": ((0.0, 1.0, 0.0, 1e-3), "popularity"),
}


def _top(scores: np.ndarray, kk: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices of the kk best per row, best first, and whether each is a real candidate (finite)."""
    if not kk:
        return np.zeros((scores.shape[0], 0), int), np.zeros((scores.shape[0], 0), bool)
    part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    picked = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-picked, axis=1, kind="mergesort")
    part = np.take_along_axis(part, order, axis=1)
    return part, np.isfinite(np.take_along_axis(picked, order, axis=1))


def ranked(sig: Signals, weights: tuple[float, float, float, float], k: int, popularity: str = "decayed",
           chunk: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """top_k as arrays: per member of sig (in order) the column indices of its min(k, items) best items, best
    first, and whether each is a real candidate (a finite score; the real ones come first)."""
    pop = sig.popularity if popularity == "popularity" else sig.decayed
    kk = min(k, len(sig.course_ids))
    parts, valids = [np.zeros((0, kk), int)], [np.zeros((0, kk), bool)]
    for start in range(0, len(sig.members), chunk):
        part, valid = _top(blend_scores(sig, slice(start, start + chunk), weights, pop), kk)
        parts.append(part)
        valids.append(valid)
    return np.concatenate(parts), np.concatenate(valids)


def top_k(sig: Signals, weights: tuple[float, float, float, float], k: int, popularity: str = "decayed",
          chunk: int = 2000) -> dict[int, list[int]]:
    part, valid = ranked(sig, weights, k, popularity, chunk)
    return {int(member): sig.course_ids[items[ok]].tolist()
            for member, items, ok in zip(sig.members, part, valid)}


SERVE_COLUMNS = ["member_id", "rank", "course_id", "score", "reason", "reason_text", "reason_course_id"]


def serve(sig: Signals, weights: tuple[float, float, float, float], k: int, completed: pd.DataFrame | None = None,
          titles: dict[int, str] | None = None, popularity: str = "decayed", chunk: int = 2000) -> pd.DataFrame:
    """The served top-k with reasons: the same ranking as top_k(sig, weights, k, popularity) (the evaluation's), each item
    labelled by the largest part of its score — "buy_again" (own), "because_you_finished"/"similar_to_purchase"
    (item-kNN or content; the owned item most similar to it), or "popular". completed: member_id, course_id of
    finished courses."""
    titles = titles or {}
    pop = sig.popularity if popularity == "popularity" else sig.decayed
    done = _pair_matrix(completed, sig)
    kk = min(k, len(sig.course_ids))
    w_own, w_cf, w_ct, _ = weights
    combined = w_cf * sig.sim_cf + w_ct * sig.sim_content
    frames = []
    for start in range(0, len(sig.members), chunk):
        rows = slice(start, start + chunk)
        parts, blocked = blend_parts(sig, rows, weights, pop)
        scores = sum(parts.values()).copy()
        scores[blocked] = -np.inf
        part, valid = _top(scores, kk)
        owned = sig.owned[rows].toarray() > 0
        done_rows = done[rows].toarray() > 0
        members = sig.members[rows].to_numpy()
        zero = np.zeros_like(scores)
        own = parts.get("own", zero)
        personal = parts.get("item_knn", zero) + parts.get("content", zero)
        popular = parts["popularity"]
        for rank in range(kk):
            items = part[:, rank]
            at = (np.arange(len(members)), items)
            because = np.argmax(np.where(owned, combined[:, items].T, -np.inf), axis=1) if owned.size else items
            is_own = (own[at] > 0) & (own[at] >= np.maximum(personal[at], popular[at]))
            is_personal = ~is_own & (personal[at] > popular[at]) & owned.any(axis=1)
            finished = done_rows[at[0], because] if done_rows.size else np.zeros(len(members), dtype=bool)
            reason = np.where(is_own, "buy_again", np.where(
                is_personal, np.where(finished, "because_you_finished", "similar_to_purchase"), "popular"))
            reason_course = np.where(is_own, sig.course_ids[items],
                                     np.where(is_personal, sig.course_ids[because], -1))
            frames.append(pd.DataFrame({
                "member_id": members, "rank": rank + 1, "course_id": sig.course_ids[items],
                "score": np.round(scores[at], 6), "reason": reason, "reason_course_id": reason_course,
            })[valid[:, rank]])
    if not frames:
        return pd.DataFrame(columns=SERVE_COLUMNS)
    out = pd.concat(frames, ignore_index=True).sort_values(["member_id", "rank"], kind="mergesort")
    out["reason_text"] = ""  # codes only: the words are rendered in the viewer's language when shown
    out["reason_course_id"] = out["reason_course_id"].astype("Int64").where(out["reason_course_id"] >= 0)
    return out[SERVE_COLUMNS].reset_index(drop=True)


def _pair_matrix(pairs: pd.DataFrame | None, sig: Signals) -> sparse.csr_matrix:
    """member × item 0/1 matrix over sig's members and items of (member_id, course_id) pairs (others ignored)."""
    shape = (len(sig.members), len(sig.course_ids))
    if pairs is None or pairs.empty or not all(shape):
        return sparse.csr_matrix(shape)
    rows = sig.members.get_indexer(pairs["member_id"].astype(int))
    cols = pd.Index(sig.course_ids).get_indexer(pairs["course_id"].astype(int))
    keep = (rows >= 0) & (cols >= 0)
    m = sparse.csr_matrix((np.ones(int(keep.sum())), (rows[keep], cols[keep])), shape=shape)
    m.data[:] = 1.0
    return m


def ranking_metrics(ranked: dict[int, list[int]], truth: dict[int, set[int]], k: int) -> dict[str, float]:
    """NDCG@k, hit@k (share of members with at least one relevant item in the top k), recall@k, over members
    with something relevant; per-member arrays kept for bootstrap CIs."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ndcg, hit, recall = [], [], []
    for member, items in truth.items():
        got = ranked.get(member, [])[:k]
        hits = np.array([1.0 if c in items else 0.0 for c in got])
        dcg = float((hits * discounts[: len(hits)]).sum())
        idcg = float(discounts[: min(len(items), k)].sum())
        ndcg.append(dcg / idcg if idcg else 0.0)
        hit.append(float(hits.any()))
        recall.append(hits.sum() / min(len(items), k))
    return {"ndcg": np.array(ndcg), "hit": np.array(hit), "recall": np.array(recall)}


def ranked_metrics(sig: Signals, top: tuple[np.ndarray, np.ndarray], truth: dict[int, set[int]], k: int
                   ) -> dict[str, np.ndarray]:
    """ranking_metrics(top_k(sig, …), truth, k) from ranked(sig, …) without a loop per member: the same per-member
    arrays, in truth's order, with the same float operations (each member's DCG sums its first n hits·discounts,
    n = its number of real candidates, as ranking_metrics sums over the list it gets)."""
    part, valid = top
    members = list(truth)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    n = len(members)
    if not n:
        return {"ndcg": np.zeros(0), "hit": np.zeros(0), "recall": np.zeros(0)}
    kk = part.shape[1]
    pos = sig.members.get_indexer(members)
    known = pos >= 0
    got = np.zeros((n, kk), dtype=int)
    ok = np.zeros((n, kk), dtype=bool)
    got[known], ok[known] = part[pos[known]], valid[pos[known]]
    col = pd.Index(sig.course_ids)
    n_items = max(len(col), 1)
    rel_rows = np.repeat(np.arange(n), [len(truth[m]) for m in members])
    rel_cols = col.get_indexer([c for m in members for c in truth[m]])
    keys = np.unique(rel_rows[rel_cols >= 0] * n_items + rel_cols[rel_cols >= 0])
    hits = (np.isin(np.arange(n)[:, None] * n_items + got, keys) & ok).astype(float)
    dcg = np.zeros(n)
    lengths = ok.sum(axis=1)
    for length in np.unique(lengths):
        rows = lengths == length
        dcg[rows] = (np.ascontiguousarray(hits[rows][:, :length]) * discounts[:length]).sum(axis=1)
    n_rel = np.array([len(truth[m]) for m in members])
    idcg_of = np.array([float(discounts[:min(r, k)].sum()) for r in range(k + 1)])
    idcg = idcg_of[np.minimum(n_rel, k)]
    ndcg = np.divide(dcg, idcg, out=np.zeros(n), where=idcg != 0)
    n_hits = hits.sum(axis=1)
    return {"ndcg": ndcg, "hit": (n_hits > 0).astype(float), "recall": n_hits / np.minimum(n_rel, k)}


def summarise(per_member: dict[str, np.ndarray], *, n_boot: int = 200, seed: int = 0) -> dict[str, object]:
    out: dict[str, object] = {"users": len(per_member["ndcg"])}
    rng = np.random.default_rng(seed)
    n = len(per_member["ndcg"])
    for name, values in per_member.items():
        out[name] = round(float(values.mean()), 4) if n else float("nan")
        if n:
            means = [values[rng.integers(0, n, n)].mean() for _ in range(n_boot)]
            out[f"{name}_ci"] = [round(float(v), 4) for v in np.percentile(means, [2.5, 97.5])]
    return out


def truth_sets(new: pd.DataFrame, sig: Signals) -> dict[int, set[int]]:
    """What each member took up in the test window, minus owned items that cannot be bought again."""
    known = set(sig.course_ids.tolist())
    owned = set(zip(*sig.owned.nonzero()))
    member_pos = {int(m): i for i, m in enumerate(sig.members)}
    col = {int(c): i for i, c in enumerate(sig.course_ids)}
    out: dict[int, set[int]] = {}
    for m, c in zip(new["member_id"].astype(int), new["course_id"].astype(int)):
        if c not in known or m not in member_pos:
            continue
        if (member_pos[m], col[c]) in owned and not sig.rebuyable[col[c]]:
            continue
        out.setdefault(m, set()).add(c)
    return out


def tune(sig: Signals, truth: dict[int, set[int]], k: int
         ) -> tuple[tuple[float, float, float, float], float, str]:
    """The blend with the best mean NDCG@k on the validation split (ties: the earlier, simpler one): the grid of
    own/kNN/popularity weights (time-decayed popularity), then content weights on the best of those, then the peers
    themselves (PEER_WEIGHTS, with their own popularity), so what is served is never below a peer there.
    Returns (weights, NDCG@k, popularity kind: "decayed" or "popularity")."""
    if len(truth) > TUNE_MEMBERS:
        keep = np.random.default_rng(0).choice(sorted(truth), TUNE_MEMBERS, replace=False)
        truth = {int(m): truth[int(m)] for m in keep}
    rows = np.flatnonzero(sig.members.isin(list(truth)))
    sub = Signals(sig.course_ids, sig.popularity, sig.decayed, sig.rebuyable, sig.sim_cf, sig.sim_content,
                  sig.members[rows], sig.own[rows], sig.owned[rows])

    def score(weights: tuple[float, float, float, float], popularity: str = "decayed") -> float:
        return float(ranked_metrics(sub, ranked(sub, weights, k, popularity), truth, k)["ndcg"].mean()) if truth else 0.0

    best, best_ndcg, kind = BLEND_GRID[0], -1.0, "decayed"
    for weights in BLEND_GRID:
        ndcg = score(weights)
        if ndcg > best_ndcg + 1e-9:
            best, best_ndcg = weights, ndcg
    for w_content in CONTENT_WEIGHTS:
        weights = (best[0], best[1], w_content, best[3])
        ndcg = score(weights)
        if ndcg > best_ndcg + 1e-9:
            best, best_ndcg = weights, ndcg
    for weights, popularity in PEER_WEIGHTS.values():
        ndcg = score(weights, popularity)
        if ndcg > best_ndcg + 1e-9:
            best, best_ndcg, kind = weights, ndcg, popularity
    return best, best_ndcg, kind
