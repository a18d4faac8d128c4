"""reasons.silent (used by the vectorised scorer) is exactly where reason_text has nothing to say."""
from __future__ import annotations

import itertools

import pandas as pd
import pytest
from django.utils import translation

from analytics.ml import repurchase
from analytics.ml.reasons import _codes, reason_text, silent


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_silent_is_where_reason_text_is_none(language):
    figures = [0.0, 0.00004, 0.4, 1.0, 2.0, 3.5, 30.0]
    with translation.override(language):
        for code in [*sorted(_codes()), "not_a_feature"]:
            for v, live, bought, lessons in itertools.product(figures, (0.0, 1.0), (0.0, 1.0), (0.0, 3.0)):
                params = {"value": v, "sub_live": live, "has_purchased": bought, "lessons_total": lessons}
                assert bool(silent(code, v, live, bought)) == (reason_text(code, params) is None), (code, params)


def test_the_vectorised_walk_keeps_k_reasons_in_order_and_skips_silent_ones():
    names = ["avg_order_value", "frequency", "tenure_days", "sub_yearly", "events_30"]
    X = pd.DataFrame({"avg_order_value": [50.0, 50.0], "frequency": [0.0, 3.0], "tenure_days": [100.0, 10.0],
                      "sub_yearly": [1.0, 1.0], "events_30": [4.0, 0.0], "sub_live": [0.0, 1.0],
                      "has_purchased": [0.0, 1.0], "lessons_total": [0.0, 0.0]}, index=[7, 8])
    contrib = pd.DataFrame({"avg_order_value": [0.9, 0.9], "frequency": [-0.8, 0.0], "tenure_days": [0.5, 0.0],
                            "sub_yearly": [0.4, 0.3], "events_30": [0.2, 0.0]}, index=[7, 8])
    got = repurchase.top_reasons(contrib[names], X, k=3)
    # Member 7 never bought and has no live membership: the order value, frequency and yearly plan say nothing.
    assert [r["code"] for r in got[0]] == ["tenure_days", "events_30"]
    # Member 8: after two reasons the other features have no effect (0): the walk stops there.
    assert [r["code"] for r in got[1]] == ["avg_order_value", "sub_yearly"]
    assert got[1][0]["params"] == {"value": 50.0, "sub_live": 1.0, "has_purchased": 1.0, "lessons_total": 0.0}
    assert got[0][0]["effect"] == "+" and got[0][0]["weight"] == 0.5
