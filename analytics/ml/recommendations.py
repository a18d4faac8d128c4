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


def fit(courses: pd.DataFrame, interactions: pd.DataFrame, as_of: datetime,
        weights: tuple[float, float, float] = (W_CF, W_CONTENT, W_POPULAR),
        ratings: pd.DataFrame | None = None, w_rated: float = W_RATED) -> RecModel:
    """ratings: member_id, course_id, rating of the visible reviews known before as_of (datasets.course_ratings)."""
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
                    as_of, weights, rated_similarity(ratings, index), w_rated)


REASON_TEXT = {
    "because_you_finished": "Because you finished “{title}”",
    "similar_to_purchase": "Similar to “{title}”, which you have",
    "popular": "Popular with members right now",
    "rated_highly_also_liked": "Members who rated “{title}” highly also liked this",
}


def recommend(model: RecModel, history: pd.DataFrame, member_ids: list[int], k: int,
              blocked: set[int] | None = None, popularity_only: bool = False,
              ratings: pd.DataFrame | None = None) -> pd.DataFrame:
    """Top-k per member. history: member_id, course_id, completed (what each member has before as_of).
    blocked: members with all-course access (nothing to recommend). popularity_only: the baseline.
    ratings: member_id, course_id, rating known before as_of (the members' own high ratings drive W_RATED)."""
    columns = ["member_id", "rank", "course_id", "score", "reason", "reason_text", "reason_course_id"]
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
        scores[owned_dense] = -np.inf
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
    titles = dict(zip(model.course_ids.tolist(), model.titles))
    out["reason_text"] = [REASON_TEXT[r].format(title=titles.get(int(c), "")) for r, c in
                          zip(out["reason"], out["reason_course_id"])]
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
