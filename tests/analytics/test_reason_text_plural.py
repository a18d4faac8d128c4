"""Churn reasons read as English: one action, not "1 actions" (staff read these per member on the churn page)."""
from __future__ import annotations

import pytest

from analytics.ml.reasons import reason_params, reason_text


def _row(feature: str, value: float) -> dict:
    return {"sub_live": 1, "has_purchased": 1, "lessons_total": 3, feature: value}


@pytest.mark.parametrize(("feature", "value", "text"), [
    ("events_30", 1, "1 action on the site in 30 days"),
    ("events_30", 2, "2 actions on the site in 30 days"),
    ("events_30", 0, "no actions on the site in 30 days"),
    ("email_30", 1, "1 email open or click in 30 days"),
    ("lessons_7", 1, "completed 1 lesson in 7 days"),
    ("renewals_total", 1, "renewed 1 time"),
    ("frequency", 1, "1 paid order in total"),
    ("low_ratings_given", 1, "gave 1 low rating (1–2★)"),
    ("community_total", 11, "11 community contributions in total"),
])
def test_reason_text_agrees_in_number(feature, value, text):
    assert reason_text(feature, reason_params(feature, _row(feature, value))) == text


def test_stored_codes_are_rendered_at_display_and_old_rows_keep_their_text():
    from django.utils import translation

    from analytics.ml.reasons import reasons_display
    stored = [{"feature": "events_30", "code": "events_30", "effect": "-", "weight": -0.3,
               "params": reason_params("events_30", _row("events_30", 1))},
              {"feature": "monetary", "text": "spent 1,200 in total", "effect": "+"}]  # scored before codes
    with translation.override("en"):
        shown = reasons_display(stored)
    assert [r["text"] for r in shown] == ["1 action on the site in 30 days", "spent 1,200 in total"]
    assert "text" not in stored[0]  # rendering does not write back


def test_a_reason_that_says_nothing_for_this_member_is_not_shown():
    from analytics.ml.reasons import reasons_display
    params = reason_params("monetary", {"monetary": 0, "sub_live": 1, "has_purchased": 0, "lessons_total": 0})
    assert reasons_display([{"code": "monetary", "params": params, "effect": "-"}]) == []


def test_the_same_stored_reason_reads_in_the_viewers_language():
    from django.utils import translation

    from analytics.ml.reasons import reasons_display
    stored = [{"code": "events_30", "effect": "-", "params": reason_params("events_30", _row("events_30", 4))}]
    with translation.override("en"):
        english = reasons_display(stored)[0]["text"]
    with translation.override("zh-hans"):
        chinese = reasons_display(stored)[0]["text"]
    assert english == "4 actions on the site in 30 days"
    assert chinese == "30 天内站内行为 4 次"
