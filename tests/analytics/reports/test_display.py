"""How the staff reports read to a person: campaign uplift in percentage points with its CI, dates in any language."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import translation

from analytics.outreach.campaigns import CampaignResult, GroupResult
from analytics.reports.views import _result_display
from tests.members.factories import UserFactory


def _result(**overrides: object) -> CampaignResult:
    fields: dict[str, object] = {
        "campaign_id": 1, "treatment": GroupResult(n=270, conversions=71, revenue=Decimal("100")),
        "control": GroupResult(n=64, conversions=10, revenue=Decimal("10")), "uplift": 71 / 270 - 10 / 64,
        "ci_low": -0.0119, "ci_high": 0.1954, "wald_low": 0.0034, "wald_high": 0.2100, "coupons_issued": 270,
        "coupons_redeemed": 60, "discount_given": Decimal("2823.66"), "incremental_revenue": Decimal("1812.43"),
    }
    fields.update(overrides)
    return CampaignResult(**fields)  # type: ignore[arg-type]


def test_campaign_result_reads_as_rates_and_percentage_points():
    with translation.override("en"):
        rows = dict(_result_display(_result()))
    assert rows["Treatment"] == "71 of 270 converted (26.3%)"
    assert rows["Control"] == "10 of 64 converted (15.6%)"
    assert rows["Uplift"] == "+10.7 pp"
    assert rows["95% CI"].startswith("[-1.2, +19.5] pp")
    assert rows["Wald CI (for comparison)"] == "[+0.3, +21.0] pp"
    assert rows["Coupons issued / redeemed"] == "270 / 60"
    assert rows["Incremental revenue (net of discounts)"] == "1,812.43"


def test_campaign_without_both_groups_says_why_there_is_no_uplift():
    empty = GroupResult(n=0, conversions=0, revenue=Decimal("0"))
    with translation.override("en"):
        rows = dict(_result_display(_result(treatment=empty, control=empty, uplift=None, ci_low=None, ci_high=None,
                                            wald_low=None, wald_high=None)))
    assert rows["Uplift"].startswith("Not measurable yet")
    assert "95% CI" not in rows
    with translation.override("zh-hans"):
        labels = [label for label, _ in _result_display(_result())]
    assert "对照组" in labels and "Control" not in labels


@pytest.mark.django_db
def test_report_date_inputs_keep_iso_values_in_chinese(client):
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    client.cookies["django_language"] = "zh-hans"
    response = client.get(reverse("analytics:churn"))  # unbound: the default window's dates as initial values
    assert response.status_code == 200
    html = response.content.decode()
    assert 'lang="zh-hans"' in html
    # <input type="date"> shows nothing for a localized value such as 2026/10/31.
    values = re.findall(r'<input type="date" name="(?:start|end)" value="([^"]*)"', html)
    assert len(values) == 2 and all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", v) for v in values), values
    assert "<title>流失风险" in html


def test_the_mrr_movements_bars_stand_on_round_ticks_with_zero():
    """The stacked MRR movements chart once printed only its extremes (459.05, -178.00); its axis is now round."""
    from analytics.reports.charts import stacked_bar_chart

    svg = stacked_bar_chart(["2026-01", "2026-02"], [("New", "#00f", [459.05, 10.0]),
                                                     ("Churned", "#f00", [0.0, -178.0])], unit="money")
    assert re.findall(r'<text class="tick"[^>]*>([^<]*)<', svg) == ["-200", "0", "200", "400", "600"]
