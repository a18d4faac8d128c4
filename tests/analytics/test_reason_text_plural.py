"""Churn reasons read as English: one action, not "1 actions" (staff read these per member on the churn page)."""
from __future__ import annotations

import pytest

from analytics.ml.repurchase import reason_text


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
    assert reason_text(feature, _row(feature, value)) == text
