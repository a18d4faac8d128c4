"""What the report pages call things, in the reader's language.

The reports compute with stable English keys (column names, figure keys, metric keys, feature names, segment
labels): they are what the CSV exports write and what other tools read, so they never change with the language.
These maps turn a key into the label a page shows (gettext_lazy, resolved when the page renders). A key with no
entry is shown as it is, so a new metric or feature still appears, untranslated, until it gets a label here.
"""
from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

# Table columns (the CSV header names).
COLUMNS: dict[str, Promise] = {
    "figure": _("Figure"),
    "value": _("Value"),
    "previous period": _("Previous period"),
    "change": _("Change"),
    "unit": _("Unit"),
    "cohort": _("Cohort"),
    "size": _("Size"),
    "days": _("Days"),
    "buyers": _("Buyers"),
    "probability": _("Probability"),
    "members": _("Members"),
    "first course": _("First course"),
    "next course": _("Next course"),
    "first-time buyers": _("First-time buyers"),
    "bought again": _("Bought again"),
    "rate": _("Rate"),
    "churn risk": _("Churn risk"),
    "decile": _("Decile"),
    "predicted": _("Predicted"),
    "actual": _("Actual"),
    "model": _("Model"),
    "kind": _("Kind"),
    "serving": _("Serving"),
    "metric": _("Metric"),
    "baseline name": _("Baseline name"),
    "baseline": _("Baseline"),
    "run": _("Run"),
    "as of": _("As of"),
    "current": _("Current"),
    "step": _("Step"),
    "count": _("Count"),
    "segment": _("Segment"),
    "renewed": _("Renewed"),
    "ended": _("Ended"),
    "renewal rate": _("Renewal rate"),
    "reason": _("Reason"),
    "campaign": _("Campaign"),
    "status": _("Status"),
    "audience": _("Audience"),
    "treatment": _("Treatment"),
    "control": _("Control"),
    "starts": _("Starts"),
    "ends": _("Ends"),
    "measure": _("Measure"),
    "month": _("Month"),
    "MRR at start": _("MRR at start"),
    "new": _("New"),
    "expansion": _("Expansion"),
    "contraction": _("Contraction"),
    "churned": _("Churned"),
    "reactivated": _("Reactivated"),
    "MRR at end": _("MRR at end"),
    "paying members at end": _("Paying members at end"),
    "revenue": _("Revenue"),
    "ARPU": _("ARPU"),
}

# metrics.Figure.key -> label. The repurchase figures carry their day count (see figure_label).
FIGURES: dict[str, Promise] = {
    "active_members": _("Active members"),
    "paying_members": _("Paying members"),
    "mrr": _("MRR"),
    "arpu": _("ARPU"),
    "renewal_rate": _("Renewal rate"),
    "churn_rate": _("Churn rate"),
    "median_days_to_second": _("Median days to 2nd purchase"),
    "repeat_revenue": _("Revenue from repeat buyers"),
}
REPURCHASE_FIGURE = _("Repurchase rate (%(days)s days)")

# metrics.Figure.key -> the one-line definition under the figure; placeholders come from Figure.params.
FIGURE_DETAILS: dict[str, Promise] = {
    "active_members": _("Members with a membership (trial, paid, grace or cancelled but not yet ended) at the "
                        "window's end."),
    "paying_members": _("Members covered by a paid membership order at the window's end."),
    "mrr": _("Monthly-equivalent amount of the paid membership orders covering the window's end (yearly ÷ 12)."),
    "arpu": _("Paid revenue in the window ÷ members with a paid order in the window."),
    "renewal_rate": _("%(renewed)s renewed of %(due)s due in the window."),
    "churn_rate": _("%(ended)s paid memberships ended ÷ %(paying)s paying at the window's start."),
    "median_days_to_second": _("Over the %(members)s members whose second paid course order is in the window."),
    "repeat_revenue": _("Paid course orders after the member's first paid course order."),
}
REPURCHASE_DETAIL = _("%(repurchased)s of %(buyers)s first-time buyers whose first %(days)s days ended in the window "
                      "bought again within them.")

# cohorts.CohortTable.key -> (title, basis).
COHORT_TABLES: dict[str, tuple[Promise, Promise]] = {
    "subscription": (_("Subscription retention"), _("join month")),
    "repurchase": (_("Repurchase (cumulative)"), _("first-purchase month")),
    "revenue": (_("Revenue retention"), _("join month (size = month-0 revenue)")),
}

# Metric keys analytics/ml writes (model versions and recommendation runs); "@k" suffixes are kept as they are.
METRICS: dict[str, Promise] = {
    "roc_auc": _("ROC AUC"),
    "average_precision": _("Average precision"),
    "brier": _("Brier score"),
    "log_loss": _("Log loss"),
    "logloss": _("Log loss"),
    "ece": _("Expected calibration error"),
    "lift_top_decile": _("Lift in the top decile"),
    "base_rate": _("Base rate"),
    "n": _("Members evaluated"),
    "positives": _("Positives"),
    "users": _("Members evaluated"),
    "k": _("List length (k)"),
    "train_rows": _("Training rows"),
    "requested_horizon_days": _("Requested horizon (days)"),
    "precision": _("Precision"),
    "recall": _("Recall"),
    "ndcg": _("NDCG"),
    "coverage": _("Catalogue coverage"),
    "hit_rate": _("Hit rate"),
}

# Baseline names of model cards and recommendation runs.
BASELINES: dict[str, Promise] = {
    "baseline": _("Baseline"),
    "recency_frequency": _("Recency/frequency"),
    "rfm_logistic": _("RFM logistic regression"),
    "recent_activity": _("Recent activity"),
    "activity_90": _("Activity in 90 days"),
    "bgnbd": _("BG/NBD"),
    "popularity": _("Popularity"),
}

MODEL_KINDS: dict[str, Promise] = {
    "repurchase": _("Repurchase"),
}

# Segment labels analytics/ml/segmentation.py assigns.
SEGMENTS: dict[str, Promise] = {
    "Champions": _("Champions"),
    "Loyal": _("Loyal"),
    "Promising": _("Promising"),
    "New": _("New"),
    "Needs attention": _("Needs attention"),
    "At risk": _("At risk"),
    "Hibernating": _("Hibernating"),
    "Lost": _("Lost"),
    "All members": _("All members"),
}

# Feature names (analytics/ml/features.py, segment profiles, feature importance).
FEATURES: dict[str, Promise] = {
    "recency_days": _("Days since last purchase"),
    "frequency": _("Orders"),
    "frequency_90": _("Orders, 90 days"),
    "course_orders_90": _("Course orders, 90 days"),
    "course_orders_total": _("Course orders, total"),
    "monetary": _("Amount spent"),
    "avg_order_value": _("Average order value"),
    "ipi_mean": _("Mean days between purchases"),
    "ipi_std": _("Spread of days between purchases"),
    "renewals_total": _("Renewals, total"),
    "has_purchased": _("Has purchased"),
    "engagement": _("Engagement"),
    "tenure_days": _("Days since joining"),
    "sub_live": _("Live membership"),
    "sub_days_to_period_end": _("Days to period end"),
    "sub_cancel_pending": _("Cancellation pending"),
    "sub_yearly": _("Yearly membership"),
    "sub_trialing": _("In a trial"),
    "sub_ever": _("Ever a member"),
    "tier_price": _("Tier price"),
    "learning_7": _("Learning events, 7 days"),
    "learning_30": _("Learning events, 30 days"),
    "learning_90": _("Learning events, 90 days"),
    "community_ev_30": _("Community events, 30 days"),
    "community_ev_90": _("Community events, 90 days"),
    "email_30": _("Email events, 30 days"),
    "email_90": _("Email events, 90 days"),
    "purchase_ev_30": _("Purchase events, 30 days"),
    "events_30": _("Events, 30 days"),
    "events_90": _("Events, 90 days"),
    "days_since_last_event": _("Days since last event"),
    "lessons_7": _("Lessons, 7 days"),
    "lessons_30": _("Lessons, 30 days"),
    "lessons_90": _("Lessons, 90 days"),
    "lessons_total": _("Lessons, total"),
    "days_since_last_lesson": _("Days since last lesson"),
    "enrollments_total": _("Enrolments, total"),
    "courses_completed": _("Courses completed"),
    "completion_rate": _("Completion rate"),
    "posts_90": _("Posts, 90 days"),
    "comments_90": _("Comments, 90 days"),
    "reactions_90": _("Reactions, 90 days"),
    "community_30": _("Community actions, 30 days"),
    "community_total": _("Community actions, total"),
    "coupons_redeemed": _("Coupons redeemed"),
    "coupon_share": _("Share of orders with a coupon"),
    "n_reviews_given": _("Reviews given"),
    "reviews_30": _("Reviews, 30 days"),
    "reviews_90": _("Reviews, 90 days"),
    "avg_rating_given": _("Average rating given"),
    "low_ratings_given": _("Low ratings given"),
    "avg_rating_of_purchased": _("Average rating of purchased courses"),
}

FUNNEL_STEPS: dict[str, Promise] = {
    "impressions": _("Impressions"),
    "clicks": _("Clicks"),
    "purchases after a click": _("Purchases after a click"),
}


def label(key: object, *maps: dict[str, Promise]) -> str:
    """The first map's label for `key`, or the key itself. Without maps: columns, features, then segments."""
    text = str(key)
    for mapping in maps or (COLUMNS, FEATURES, SEGMENTS):
        if text in mapping:
            return str(mapping[text])
    return text


def metric_label(name: str) -> str:
    """roc_auc -> "ROC AUC"; precision@5 -> "Precision@5" (the @k suffix kept)."""
    base, at, k = name.partition("@")
    return label(base, METRICS) + (f"@{k}" if at else "")


def figure_label(key: str, params: dict[str, object]) -> str:
    if key.startswith("repurchase_") and "days" in params:
        return str(REPURCHASE_FIGURE) % {"days": params["days"]}
    return label(key, FIGURES)


def figure_detail(key: str, params: dict[str, object], fallback: str) -> str:
    template = REPURCHASE_DETAIL if key.startswith("repurchase_") and "days" in params else FIGURE_DETAILS.get(key)
    if template is None:
        return fallback
    try:
        return str(template) % params if "%(" in str(template) else str(template)
    except (KeyError, TypeError, ValueError):
        return fallback


def days_bin(text: str) -> str:
    """A bin label such as "8–30 d" or "> 365 d", with the day unit in the reader's language."""
    if text.endswith(" d"):
        return gettext("%(range)s d") % {"range": text[:-2]}
    return text
