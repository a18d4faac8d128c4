"""Why a member's repurchase score is what it is: reason *codes* and their figures are stored, words are rendered
when someone reads them, in the reader's language.

`analytics.ml.repurchase.top_reasons` stores, per member, up to three `{"code", "params", "effect", "weight"}`
entries (the code is the feature name; params are the member's figure and the three facts the wording depends on).
`reason_text(code, params)` turns one into a sentence in the active language (Django's gettext), or None when the
figure says nothing for this member; the scorer uses the same function to skip those, so what is stored is always
renderable. `reasons_display(reasons)` adds a `text` to each stored reason for a page, a CSV or the API. Rows scored
before codes were stored carry an English `text` and no code: they are shown as they were.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping

import numpy as np
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _

# The row facts the wording depends on, stored beside the feature's own value.
CONTEXT = ("sub_live", "has_purchased", "lessons_total")
BUYER_ONLY = {"frequency", "frequency_90", "course_orders_90", "course_orders_total", "monetary", "avg_order_value",
              "ipi_mean", "ipi_std", "renewals_total"}


# A stored reason's params, in this order: the member's figure (rounded to 4 places) and the row facts.
PARAMS = ("value", *CONTEXT)


def reason_params(feature: str, row: Mapping) -> dict[str, float]:
    """The figures `reason_text` needs for `feature`, as plain JSON numbers."""
    return dict(zip(PARAMS, (round(float(row[feature]), 4), *(float(row[key]) for key in CONTEXT)), strict=True))


def _days(n: int) -> str:
    return ngettext("%(n)d day", "%(n)d days", n) % {"n": n}


def _texts(v: float, n: int, live: bool, bought: bool, lessons_total: float) -> dict[str, Callable[[], str | None]]:
    """Each code's sentence as a function: only the one asked for is translated and formatted."""
    days, money, share, stars = _days(n), f"{v:,.0f}", f"{v:.0%}", f"{v:.1f}"
    return {
        "recency_days": lambda: ((_("last purchase %(days)s ago") % {"days": days} if n else _("bought today")) if bought
                         else _("no purchase in %(days)s as a member") % {"days": days}),
        "frequency": lambda: _("%(n)d paid orders in total") % {"n": n},
        "frequency_90": lambda: _("%(n)d orders in the last 90 days") % {"n": n},
        "course_orders_90": lambda: _("bought %(n)d courses in 90 days") % {"n": n},
        "course_orders_total": lambda: _("bought %(n)d courses in total") % {"n": n},
        "monetary": lambda: _("spent %(amount)s in total") % {"amount": money},
        "avg_order_value": lambda: _("average order %(amount)s") % {"amount": money},
        "ipi_mean": lambda: _("buys every %(days)s on average") % {"days": days} if v else _("only one purchase so far"),
        "ipi_std": lambda: _("purchase gaps vary by %(days)s") % {"days": days} if v else _("steady purchase rhythm"),
        "renewals_total": lambda: _("renewed %(n)d times") % {"n": n},
        "has_purchased": lambda: _("has bought before") if v else _("never bought"),
        "tenure_days": lambda: _("member for %(days)s") % {"days": days},
        "sub_live": lambda: _("active membership") if v else _("no active membership"),
        "sub_days_to_period_end": lambda: _("renewal due in %(days)s") % {"days": days} if live else _("no renewal due"),
        "sub_cancel_pending": lambda: (_("membership set to cancel") if v
                               else _("membership renews automatically")),
        "sub_yearly": lambda: _("yearly plan") if v else _("monthly plan"),
        "sub_trialing": lambda: _("on a free trial"),
        "sub_ever": lambda: _("subscribed before") if v else _("never subscribed"),
        "tier_price": lambda: _("tier at %(amount)s a month") % {"amount": money},
        "learning_7": lambda: _("%(n)d learning actions in 7 days") % {"n": n},
        "learning_30": lambda: _("%(n)d learning actions in 30 days") % {"n": n},
        "learning_90": lambda: _("%(n)d learning actions in 90 days") % {"n": n},
        "community_ev_30": lambda: _("%(n)d community actions in 30 days") % {"n": n},
        "community_ev_90": lambda: _("%(n)d community actions in 90 days") % {"n": n},
        "email_30": lambda: _("%(n)d email opens or clicks in 30 days") % {"n": n},
        "email_90": lambda: _("%(n)d email opens or clicks in 90 days") % {"n": n},
        "purchase_ev_30": lambda: _("%(n)d shopping actions in 30 days") % {"n": n},
        "events_30": lambda: _("%(n)d actions on the site in 30 days") % {"n": n},
        "events_90": lambda: _("%(n)d actions on the site in 90 days") % {"n": n},
        "days_since_last_event": lambda: _("last active %(days)s ago") % {"days": days} if n else _("active today"),
        "lessons_7": lambda: _("completed %(n)d lessons in 7 days") % {"n": n},
        "lessons_30": lambda: _("completed %(n)d lessons in 30 days") % {"n": n},
        "lessons_90": lambda: _("completed %(n)d lessons in 90 days") % {"n": n},
        "lessons_total": lambda: _("completed %(n)d lessons in total") % {"n": n},
        "days_since_last_lesson": lambda: (((_("last lesson %(days)s ago") if n <= 7 else _("no lesson in %(days)s"))
                                    % {"days": days} if n else _("completed a lesson today")) if lessons_total
                                   else _("never completed a lesson")),
        "enrollments_total": lambda: _("enrolled in %(n)d courses") % {"n": n},
        "courses_completed": lambda: _("finished %(n)d courses") % {"n": n},
        "completion_rate": lambda: _("finishes %(share)s of enrolled courses") % {"share": share},
        "posts_90": lambda: _("%(n)d posts in 90 days") % {"n": n},
        "comments_90": lambda: _("%(n)d comments in 90 days") % {"n": n},
        "reactions_90": lambda: _("%(n)d reactions in 90 days") % {"n": n},
        "community_30": lambda: _("%(n)d community contributions in 30 days") % {"n": n},
        "community_total": lambda: _("%(n)d community contributions in total") % {"n": n},
        "coupons_redeemed": lambda: _("used %(n)d coupons") % {"n": n},
        "coupon_share": lambda: _("%(share)s of orders with a coupon") % {"share": share},
        "n_reviews_given": lambda: _("wrote %(n)d course reviews") % {"n": n},
        "reviews_30": lambda: _("wrote %(n)d course reviews in the last 30 days") % {"n": n},
        "reviews_90": lambda: _("wrote %(n)d course reviews in the last 90 days") % {"n": n},
        "avg_rating_given": lambda: _("rates courses %(stars)s★ on average") % {"stars": stars},
        "low_ratings_given": lambda: _("gave %(n)d low ratings (1–2★)") % {"n": n},
        "avg_rating_of_purchased": lambda: _("courses bought are rated %(stars)s★ on average") % {"stars": stars},
    }


# When a code's figure says nothing for a member, beyond BUYER_ONLY codes for members who never bought: v is the
# stored figure, live whether a membership is live. Array operators, so one call answers for many members at once.
SILENT = {
    "sub_cancel_pending": lambda v, live: (v == 0) & ~live,  # no cancellation pending and nothing to renew
    "sub_yearly": lambda v, live: ~live,
    "sub_trialing": lambda v, live: v == 0,
    "tier_price": lambda v, live: ~live,
    "avg_rating_given": lambda v, live: v == 0,
    "avg_rating_of_purchased": lambda v, live: v == 0,
}


@functools.cache
def _codes() -> frozenset[str]:
    return frozenset(_texts(0.0, 0, False, False, 0.0))


def silent(code: str, value: object, live: object, bought: object) -> np.ndarray:
    """Where `code` says nothing (reason_text is None), for arrays (or scalars) of stored figures and flags."""
    v = np.asarray(value, dtype=float)
    live_ = np.asarray(live, dtype=bool)
    bought_ = np.asarray(bought, dtype=bool)
    out = np.zeros(np.broadcast(v, live_, bought_).shape, dtype=bool)
    if code not in _codes():
        return ~out
    if code in BUYER_ONLY:
        out |= ~bought_  # "average order 0" says nothing a "never bought" reason does not say better
    if code in SILENT:
        out |= SILENT[code](v, live_)
    return out


def reason_text(code: str, params: Mapping, language: str | None = None) -> str | None:
    """One stored reason in the active language (or `language`: a caller asking for 100,000 members' reasons
    looks the active language up once); None when the figure says nothing for this member."""
    return _reason_text(code, float(params["value"]), bool(params["sub_live"]), bool(params["has_purchased"]),
                        float(params["lessons_total"]), language or get_language() or "en")


@functools.lru_cache(maxsize=1 << 16)
def _reason_text(code: str, v: float, live: bool, bought: bool, lessons_total: float, language: str) -> str | None:
    """Cached per (code, figures, language): scoring 100,000 members asks for each distinct text once (most figures
    are small counts that repeat across members), instead of formatting every feature's text for every member."""
    if silent(code, v, live, bought):
        return None
    n = round(v)
    text = _texts(v, n, live, bought, lessons_total)[code]()
    if text and language.startswith("en"):  # English number agreement; catalogues do their own
        if n == 0:
            return _none_for_zero(text)
        if n == 1:
            return _singular(text)
    return text


def reasons_display(reasons: object) -> list[dict]:
    """Stored reasons with a `text` in the active language. Old rows (English text, no code) are kept as stored."""
    if not isinstance(reasons, list):
        return []
    shown = []
    for reason in reasons:
        if not isinstance(reason, dict):
            continue
        if reason.get("code") and isinstance(reason.get("params"), dict):
            text = reason_text(reason["code"], reason["params"])
            if text is None:
                continue
            reason = {**reason, "text": text}
        shown.append(reason)
    return shown


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
