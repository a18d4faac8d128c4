"""Pure feature builders: DataFrames in, one row per member out. No database, no clock — `as_of` comes in.

Every feature is a non-negative float and a member with no rows of some kind gets zeros there (a platform that
exported only orders still gets a full matrix). "Days since X" for a member who never did X is their tenure: the
honest statement is "not in the N days we have known them".
"""
from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from analytics.ml import btyd
from analytics.ml.datasets import MIRRORED_EVENT_KINDS, Snapshot, event_category

DAY_SECONDS = 86400.0
MAX_DAYS = 3650.0

PURCHASE_FEATURES = [
    "recency_days", "frequency", "frequency_90", "course_orders_90", "course_orders_total", "monetary",
    "avg_order_value", "ipi_mean", "ipi_std", "renewals_total", "has_purchased",
]
TENURE_FEATURES = ["tenure_days"]
SUBSCRIPTION_FEATURES = [
    "sub_live", "sub_days_to_period_end", "sub_cancel_pending", "sub_yearly", "sub_trialing", "sub_ever", "tier_price",
]
ACTIVITY_FEATURES = [
    "learning_7", "learning_30", "learning_90", "community_ev_30", "community_ev_90", "email_30", "email_90",
    "purchase_ev_30", "events_30", "events_90", "days_since_last_event",
]
LEARNING_FEATURES = [
    "lessons_7", "lessons_30", "lessons_90", "lessons_total", "days_since_last_lesson", "enrollments_total",
    "courses_completed", "completion_rate",
]
COMMUNITY_FEATURES = ["posts_90", "comments_90", "reactions_90", "community_30", "community_total"]
COUPON_FEATURES = ["coupons_redeemed", "coupon_share"]
REVIEW_FEATURES = ["n_reviews_given", "reviews_30", "reviews_90", "avg_rating_given", "low_ratings_given",
                   "avg_rating_of_purchased"]
# Event quantities (seconds watched, pages read, clicks: Event.quantity) and the trend of activity and purchases:
# the share of the last 90 days' events that fell in the last 30 (1/3 = steady, more = rising) and the days active.
TREND_FEATURES = ["events_7", "quantity_7", "quantity_30", "quantity_90", "events_trend", "frequency_30",
                  "frequency_365", "monetary_90", "days_since_last_activity"]
# How enrolments ended (outcome events) and the enrolment lifecycle.
OUTCOME_FEATURES = ["outcomes_completed", "outcomes_failed", "outcomes_withdrawn", "days_since_last_outcome",
                    "enrollments_90", "days_since_last_enrollment"]
# BG/NBD fitted on this snapshot's purchases: its inputs (weeks) and its expectations, as features.
BGNBD_FEATURES = ["bg_x", "bg_t_x", "bg_T", "bg_p_alive", "bg_p_buy_90"]

FEATURES = (PURCHASE_FEATURES + TENURE_FEATURES + SUBSCRIPTION_FEATURES + ACTIVITY_FEATURES + LEARNING_FEATURES
            + COMMUNITY_FEATURES + COUPON_FEATURES + REVIEW_FEATURES + TREND_FEATURES + OUTCOME_FEATURES
            + BGNBD_FEATURES)


def days_between(later: pd.Timestamp, earlier: pd.Series) -> pd.Series:
    return ((later - earlier).dt.total_seconds() / DAY_SECONDS).clip(lower=0.0)


def _side_by_side(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The parts joined column-wise on member_id (outer: a member in any part gets a row); empty when none."""
    if not parts:
        return pd.DataFrame(index=pd.Index([], name="member_id"))
    out = pd.concat(parts, axis=1)
    out.index.name = "member_id"
    return out


def purchase_features(orders: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """Recency, frequency, monetary value and inter-purchase intervals from paid orders before as_of."""
    ts = pd.Timestamp(as_of)
    if orders.empty:
        return pd.DataFrame(columns=[c for c in PURCHASE_FEATURES if c != "recency_days"] + ["last_order_at"],
                            index=pd.Index([], name="member_id"), dtype=float)
    # By member, then time: the order sort_values(["member_id", "paid_at"]) gives (both sorts are stable, so ties
    # keep the frame's order and every sum below adds the same floats in the same order), by np.lexsort on the raw
    # integers instead of pandas factorizing both keys first, moving only the columns used here (issue 19).
    o = orders[["member_id", "paid_at", "amount", "is_renewal"]].assign(
        is_course=(orders["kind"] == "course").astype(float))
    o = o.take(np.lexsort((o["paid_at"].array.asi8, o["member_id"].to_numpy())))  # paid orders: never NaT
    o = o.assign(
        days_ago=days_between(ts, o["paid_at"]),
        gap=o.groupby("member_id")["paid_at"].diff().dt.total_seconds() / DAY_SECONDS,
    )
    recent = o["days_ago"] < 90
    by_member = o["member_id"]
    g = o.groupby("member_id")
    out = pd.DataFrame({
        "last_order_at": g["paid_at"].max(),
        "frequency": g.size().astype(float),
        "frequency_90": recent.groupby(o["member_id"]).sum().astype(float),
        "course_orders_90": (o["is_course"] * recent).groupby(o["member_id"]).sum(),
        "course_orders_total": g["is_course"].sum(),
        "monetary": g["amount"].sum(),
        "ipi_mean": g["gap"].mean(),
        "ipi_std": g["gap"].std(ddof=0),
        "renewals_total": g["is_renewal"].sum().astype(float),
        "frequency_30": (o["days_ago"] < 30).groupby(by_member).sum().astype(float),
        "frequency_365": (o["days_ago"] < 365).groupby(by_member).sum().astype(float),
        "monetary_90": (o["amount"] * recent).groupby(by_member).sum().astype(float),
    })
    out["avg_order_value"] = out["monetary"] / out["frequency"]
    out["has_purchased"] = 1.0
    out.index.name = "member_id"
    return out


def subscription_features(subs: pd.DataFrame, tiers: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """State of each member's subscription at as_of: live, days to period end, cancel pending, tier price."""
    cols = SUBSCRIPTION_FEATURES
    if subs.empty:
        return pd.DataFrame(columns=cols, index=pd.Index([], name="member_id"), dtype=float)
    ts = pd.Timestamp(as_of)
    prices = tiers.set_index("tier_id")["monthly_price"] if not tiers.empty else pd.Series(dtype=float)
    s = subs.assign(tier_price=subs["tier_id"].map(prices).astype(float).fillna(0.0))
    for col in ("started_at", "period_end", "trial_end"):
        s[col] = pd.to_datetime(s[col], utc=True)
    # One row per member: the live subscription if any, else the most recent one.
    s = s.sort_values(["member_id", "live", "started_at"]).groupby("member_id").tail(1).set_index("member_id")
    live = s["live"].astype(float)
    out = pd.DataFrame({
        "sub_live": live,
        "sub_days_to_period_end": (days_between(s["period_end"], pd.Series(ts, index=s.index)) * live),
        "sub_cancel_pending": s["cancel_pending"].astype(float),
        "sub_yearly": (s["billing_period"] == "year").astype(float) * live,
        "sub_trialing": s["trialing"].astype(float) * live,
        "sub_ever": 1.0,
        "tier_price": s["tier_price"] * live,
    }, index=s.index)
    return out


def activity_features(event_counts: pd.DataFrame, last_event: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """Event counts by category over 7/30/90 days. Kinds that mirror table rows (lessons, posts, orders) are left
    out so platforms that record both are not double-counted."""
    ts = pd.Timestamp(as_of)
    out = pd.DataFrame(index=pd.Index([], name="member_id"))
    if not event_counts.empty:
        ev = event_counts[~event_counts["kind"].isin(MIRRORED_EVENT_KINDS)]
        # A few dozen kinds among hundreds of thousands of rows: categorise each kind once.
        ev = ev.assign(category=ev["kind"].map({kind: event_category(kind) for kind in ev["kind"].unique()}))
        piv = ev.pivot_table(index="member_id", columns="category", values=["n7", "n30", "n90"], aggfunc="sum",
                             fill_value=0)
        piv.columns = [f"{cat}_{win[1:]}" for win, cat in piv.columns]
        out = piv.astype(float)
        sums = ["n7", "n30", "n90"] + [c for c in ("q7", "q30", "q90") if c in event_counts.columns]
        totals = event_counts.groupby("member_id")[sums].sum().astype(float)
        out = out.join(totals.rename(columns={"n7": "events_7", "n30": "events_30", "n90": "events_90", "q7": "quantity_7",
                                              "q30": "quantity_30", "q90": "quantity_90"}), how="outer")
        out["events_trend"] = out["events_30"] / out["events_90"].where(out["events_90"] > 0)
        out = out.rename(columns={"community_30": "community_ev_30", "community_90": "community_ev_90",
                                  "purchase_30": "purchase_ev_30"})
    if not last_event.empty:
        last = last_event.set_index("member_id")["last_event_at"]
        out = out.join(days_between(ts, last).rename("days_since_last_event"), how="outer")
    out.index.name = "member_id"
    return out


def learning_features(lessons: pd.DataFrame, enrollments: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    ts = pd.Timestamp(as_of)
    parts = []
    if not lessons.empty:
        by_member = lessons.set_index("member_id")
        parts.append(pd.DataFrame({
            "lessons_7": by_member["lessons_7"].astype(float), "lessons_30": by_member["lessons_30"].astype(float),
            "lessons_90": by_member["lessons_90"].astype(float),
            "lessons_total": by_member["lessons_total"].astype(float),
            "days_since_last_lesson": days_between(ts, by_member["last_lesson_at"]),
        }))
    if not enrollments.empty:
        g = enrollments.groupby("member_id")
        enr = pd.DataFrame({
            "enrollments_total": g.size().astype(float),
            "courses_completed": g["completed_at"].count().astype(float),
        })
        enr["completion_rate"] = enr["courses_completed"] / enr["enrollments_total"]
        parts.append(enr)
    return _side_by_side(parts)


def outcome_features(outcomes: pd.DataFrame | None, enrollments: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """Course outcomes (completed / failed / withdrawn events) and when the member last enrolled."""
    ts = pd.Timestamp(as_of)
    parts = []
    if outcomes is not None and not outcomes.empty:
        o = outcomes.set_index("member_id")
        parts.append(pd.DataFrame({
            "outcomes_completed": o["outcomes_completed"].astype(float),
            "outcomes_failed": o["outcomes_failed"].astype(float),
            "outcomes_withdrawn": o["outcomes_withdrawn"].astype(float),
            "days_since_last_outcome": days_between(ts, o["last_outcome_at"]),
        }))
    if not enrollments.empty:
        e = enrollments.assign(recent=(days_between(ts, enrollments["enrolled_at"]) < 90).astype(float))
        g = e.groupby("member_id")
        parts.append(pd.DataFrame({"enrollments_90": g["recent"].sum(),
                                   "days_since_last_enrollment": days_between(ts, g["enrolled_at"].max())}))
    return _side_by_side(parts)


def bgnbd_features(orders: pd.DataFrame, as_of: datetime, member_ids: pd.Index,
                   params: dict[str, float] | None = None) -> tuple[pd.DataFrame, dict[str, float]]:
    """BG/NBD fitted on this snapshot's buyers (or `params` fitted elsewhere: a scoring chunk gets its whole
    population's, so a member's figures do not depend on the chunk it falls in); per member its inputs, P(alive) and
    P(a purchase in 90 days), and the parameters used. Both are probabilities: the expected count is unbounded when
    the fitted alpha is tiny, and one extreme column let a linear model rank a real platform by it."""
    inputs = bgnbd_inputs(orders, as_of, member_ids)
    params = dict(params) if params is not None else btyd.fit(inputs)
    return pd.DataFrame({
        "bg_x": inputs["x"], "bg_t_x": inputs["t_x"], "bg_T": inputs["T"],
        "bg_p_alive": btyd.p_alive(params, inputs), "bg_p_buy_90": btyd.probability(params, inputs, 90),
    }, index=member_ids), params


def community_features(community: pd.DataFrame) -> pd.DataFrame:
    if community.empty:
        return pd.DataFrame(index=pd.Index([], name="member_id"))
    c = community.set_index("member_id")
    counts = [col for col in c.columns if not col.endswith("_last")]
    c = c[counts].astype(float).fillna(0.0)
    out = pd.DataFrame({
        "posts_90": c["posts_90"], "comments_90": c["comments_90"], "reactions_90": c["reactions_90"],
        "community_30": c["posts_30"] + c["comments_30"] + c["reactions_30"],
        "community_total": c["posts_total"] + c["comments_total"] + c["reactions_total"],
    }).astype(float)
    return out


def review_features(reviews: pd.DataFrame | None, course_ratings: pd.DataFrame | None,
                    orders: pd.DataFrame) -> pd.DataFrame:
    """What a member says about courses (reviews written, their average and low ratings) and how well rated the
    courses they bought are (mean over their distinct bought courses of each course's average visible rating).
    0 means "no rating known"; ratings are 1–5, so it never collides with a real average."""
    parts = []
    if reviews is not None and not reviews.empty:
        r = reviews.set_index("member_id").astype(float)
        parts.append(pd.DataFrame({
            "n_reviews_given": r["n_reviews_given"], "reviews_30": r["reviews_30"], "reviews_90": r["reviews_90"],
            "avg_rating_given": (r["rating_sum"] / r["rated"].where(r["rated"] > 0)).fillna(0.0),
            "low_ratings_given": r["low_ratings_given"],
        }))
    if course_ratings is not None and not course_ratings.empty and not orders.empty:
        bought = orders.loc[(orders["kind"] == "course") & orders["course_id"].notna(), ["member_id", "course_id"]]
        bought = bought.astype({"course_id": int}).drop_duplicates()
        rated = bought.merge(course_ratings[["course_id", "course_avg_rating"]], on="course_id", how="inner")
        if not rated.empty:
            parts.append(rated.groupby("member_id")["course_avg_rating"].mean().astype(float)
                         .rename("avg_rating_of_purchased").to_frame())
    return _side_by_side(parts)


def build(snap: Snapshot, bgnbd_params: dict[str, float] | None = None) -> pd.DataFrame:
    """The full feature matrix at snap.as_of: one row per member who had joined, columns FEATURES, no NaN.
    The BG/NBD parameters it used are in `.attrs["bgnbd_params"]` (fitted here unless given)."""
    ts = pd.Timestamp(snap.as_of)
    index = pd.Index(snap.members["member_id"].astype(int), name="member_id")
    frame = pd.DataFrame(index=index)
    frame["tenure_days"] = days_between(ts, snap.members.set_index("member_id")["date_joined"]).to_numpy()

    purchases = purchase_features(snap.orders, snap.as_of)
    last_order = purchases.pop("last_order_at") if "last_order_at" in purchases else None
    blocks = [
        purchases,
        subscription_features(snap.subscriptions, snap.tiers, snap.as_of),
        activity_features(snap.event_counts, snap.last_event, snap.as_of),
        learning_features(snap.lessons, snap.enrollments, snap.as_of),
        community_features(snap.community),
    ]
    if not snap.coupons.empty:
        blocks.append(snap.coupons.set_index("member_id")[["coupons_redeemed"]].astype(float))
    blocks.append(review_features(snap.reviews, snap.course_ratings, snap.orders))
    blocks.append(outcome_features(snap.outcomes, snap.enrollments, snap.as_of))
    bgnbd, bgnbd_params = bgnbd_features(snap.orders, snap.as_of, index, bgnbd_params)
    blocks.append(bgnbd)
    for block in blocks:
        block = block[~block.index.duplicated()]
        frame = frame.join(block[[c for c in block.columns if c not in frame.columns]], how="left")
    for col in FEATURES:
        if col not in frame.columns:
            frame[col] = np.nan
    tenure = frame["tenure_days"]
    # "Days since" for never-happened: the member's tenure (see module docstring).
    if last_order is not None and len(last_order):
        frame["recency_days"] = days_between(ts, last_order.reindex(frame.index))
    frame["recency_days"] = frame["recency_days"].fillna(tenure)
    for col in ("days_since_last_event", "days_since_last_lesson", "days_since_last_outcome",
                "days_since_last_enrollment"):
        frame[col] = frame[col].fillna(tenure)
    frame["days_since_last_activity"] = frame[["recency_days", "days_since_last_event", "days_since_last_lesson",
                                               "days_since_last_enrollment"]].min(axis=1)
    frame["coupon_share"] = (frame["coupons_redeemed"].fillna(0) / frame["frequency"].where(frame["frequency"] > 0)).fillna(0)
    frame = frame[FEATURES].astype(float).fillna(0.0).clip(lower=0.0)
    day_cols = ["recency_days", "tenure_days", "days_since_last_event", "days_since_last_lesson", "ipi_mean",
                "ipi_std", "sub_days_to_period_end", "days_since_last_activity", "days_since_last_outcome",
                "days_since_last_enrollment"]
    frame[day_cols] = frame[day_cols].clip(upper=MAX_DAYS)
    frame["coupon_share"] = frame["coupon_share"].clip(upper=1.0)
    frame = frame.sort_index()
    frame.attrs["bgnbd_params"] = bgnbd_params
    return frame


def bgnbd_inputs(orders: pd.DataFrame, as_of: datetime, member_ids: pd.Index) -> pd.DataFrame:
    """BG/NBD's (x, t_x, T) in weeks: repeat-purchase days, first-to-last purchase, first purchase to as_of.
    Members who never bought get x=0, t_x=0, T=0 and a flag so the model can rank them last."""
    ts = pd.Timestamp(as_of)
    out = pd.DataFrame(index=member_ids)
    out["x"], out["t_x"], out["T"], out["buyer"] = 0.0, 0.0, 0.0, 0.0
    if orders.empty:
        return out
    days = orders.assign(day=orders["paid_at"].dt.floor("D")).drop_duplicates(["member_id", "day"])
    g = days.groupby("member_id")["paid_at"]
    first, last, n = g.min(), g.max(), g.size()
    week = 7 * DAY_SECONDS
    stats = pd.DataFrame({
        "x": (n - 1).astype(float),
        "t_x": (last - first).dt.total_seconds() / week,
        "T": (ts - first).dt.total_seconds() / week,
        "buyer": 1.0,
    }).reindex(member_ids)
    stats = stats.fillna(0.0)
    return stats
