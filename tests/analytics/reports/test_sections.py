"""Cohorts, one-off buyers, the recommendation funnel and the SVG charts against the hand-built ledger."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from analytics.models import Event, ModelVersion, PropensityScore
from analytics.reports import charts, cohorts, models_card, repurchase
from analytics.reports.common import Filters, Window
from members.models import User
from tests.analytics.reports.test_metrics import JAN, MAY, dt, ledger  # noqa: F401

AS_OF = MAY.end  # 2026-06-01


@pytest.fixture
def joined(ledger):  # noqa: F811
    """A, B, C joined in January 2026; everyone else joined "now" (the factories' default)."""
    m = ledger["members"]
    for name, day in (("A", 5), ("B", 10), ("C", 20)):
        User.objects.filter(pk=m[name].pk).update(date_joined=dt(2026, 1, day))
    return ledger


def row_for(table: cohorts.CohortTable, cohort: str) -> cohorts.CohortRow:
    return next(r for r in table.rows if r.cohort == cohort)


def test_subscription_retention_by_join_month(joined):
    table = cohorts.subscription_retention(as_of=AS_OF)
    jan = row_for(table, "2026-01")
    # January cohort = A, B, C. Active at the end of each month:
    #   m0 (02-01): B (since 01-15)            -> 1/3
    #   m1 (03-01): B, C (since 02-05)         -> 2/3
    #   m2 (04-01): A (since 03-10), B, C      -> 3/3
    #   m3 (05-01): A, B, C                    -> 3/3
    #   m4 (06-01): A, B; C ended 05-05        -> 2/3
    #   m5 ends 07-01, after as_of             -> blank
    assert jan.size == 3
    assert list(jan.values[:5]) == [pytest.approx(v) for v in (1 / 3, 2 / 3, 1.0, 1.0, 2 / 3)]
    assert jan.values[5] is None


def test_revenue_retention_by_join_month(joined):
    table = cohorts.revenue_retention(as_of=AS_OF)
    jan = row_for(table, "2026-01")
    # Month 0 (January): B's yearly 480. Feb: C 50. Mar: A 50 + C 50. Apr: A 50 + C 50. May: A 50 + A's course 150.
    assert jan.size == 480
    assert list(jan.values[:5]) == [pytest.approx(v) for v in (1.0, 50 / 480, 100 / 480, 100 / 480, 200 / 480)]


def test_cohort_filters_apply(joined):
    other_source = Filters(source=User.AcquisitionSource.SOCIAL)  # nobody in the ledger
    assert row_for(cohorts.subscription_retention(as_of=AS_OF, filters=other_source), "2026-01").size == 0
    x = joined["x"]
    # First course X: G, H, I (their first paid course order is X). Their repurchase cohort is January.
    table = cohorts.repurchase_cohorts(as_of=AS_OF, filters=Filters(first_course_id=x.pk))
    assert row_for(table, "2026-01").size == 3


def test_time_to_second_purchase_histogram(ledger):  # noqa: F811
    bins = {b.label: b.count for b in repurchase.time_to_second_purchase(window=JAN, as_of=AS_OF)}
    # G came back after 22 days (8–30), H after 115 (91–180); I's second order was refunded.
    assert bins == {"0–7 d": 0, "8–30 d": 1, "31–60 d": 0, "61–90 d": 0, "91–180 d": 1, "181–365 d": 0, "> 365 d": 0}


def test_course_transitions_and_first_courses(ledger):  # noqa: F811
    transitions, firsts = repurchase.course_transitions(window=JAN, as_of=AS_OF)
    x, y = ledger["x"].title, ledger["y"].title
    # G: X -> Y, H: X -> Y.
    assert [(t.from_course, t.to_course, t.buyers) for t in transitions] == [(x, y, 2)]
    # First course X: G, H, I bought it first in January; G and H came back.
    assert [(f.course, f.buyers, f.came_back) for f in firsts] == [(x, 3, 2)]


def test_one_off_buyer_probabilities_use_latest_score(ledger):  # noqa: F811
    m = ledger["members"]
    model = ModelVersion.objects.create(as_of=AS_OF, horizon_days=30, algorithm="x")
    PropensityScore.objects.create(member=m["J"], model_version=model, as_of=AS_OF - timedelta(days=9), probability=0.9)
    PropensityScore.objects.create(member=m["J"], model_version=model, as_of=AS_OF, probability=0.35)
    PropensityScore.objects.create(member=m["G"], model_version=model, as_of=AS_OF, probability=0.5)  # two orders
    total, scored, bins = repurchase.one_off_buyer_probabilities()
    # Exactly one paid course order: A (Y), I (X; the refunded Y does not count), J (X) -> 3; only J scored,
    # with its latest score 0.35.
    assert (total, scored) == (3, 1)
    assert {b.label: b.count for b in bins if b.count} == {"0.3–0.4": 1}


def test_recommendation_funnel_counts_purchases_after_a_click(ledger):  # noqa: F811
    m = ledger["members"]
    y = str(ledger["y"].pk)
    t = dt(2026, 5, 10)
    for member in (m["J"], m["I"]):
        Event.objects.create(member=member, kind="recommendation_impression", object_type="course", object_id=y,
                             occurred_at=t)
    Event.objects.create(member=m["J"], kind="recommendation_click", object_type="course", object_id=y, occurred_at=t)
    Event.objects.create(member=m["J"], kind="course_purchased", object_type="course", object_id=y,
                         occurred_at=t + timedelta(hours=1))
    # I bought without clicking: not a recommendation purchase. A purchase before the click does not count either.
    Event.objects.create(member=m["I"], kind="course_purchased", object_type="course", object_id=y, occurred_at=t)
    Event.objects.create(member=m["I"], kind="recommendation_click", object_type="course", object_id=y,
                         occurred_at=t + timedelta(hours=2))
    funnel = models_card.recommendation_funnel(window=MAY)
    assert (funnel.impressions, funnel.clicks, funnel.purchases) == (2, 2, 1)
    assert funnel.click_rate == pytest.approx(1.0) and funnel.purchase_rate == pytest.approx(0.5)


def test_model_metrics_are_compared_with_every_named_baseline():
    names, rows = models_card.compare(
        {"roc_auc": 0.8, "brier": 0.09, "candidates": {"x": {}}},
        {"recency_frequency": {"roc_auc": 0.84, "brier": 0.11}, "bgnbd": {"roc_auc": 0.7}},
    )
    assert names == ("recency_frequency", "bgnbd")
    by_name = {r.name: r for r in rows}
    assert set(by_name) == {"roc_auc", "brier"}  # nested dicts are not metrics
    assert by_name["roc_auc"].better is False  # 0.8 loses to 0.84
    assert by_name["brier"].better is True  # lower is better; bgnbd has no brier
    assert by_name["brier"].baselines == (0.11, None)


def test_evaluation_sizes_are_not_marked_better_or_worse():
    _, rows = models_card.compare({"roc_auc": 0.9, "n": 523.0, "base_rate": 0.22, "k": 10.0},
                                  {"recency_frequency": {"roc_auc": 0.84, "n": 523.0, "base_rate": 0.22, "k": 10.0}})
    by_name = {r.name: r for r in rows}
    assert by_name["roc_auc"].better is True
    assert by_name["n"].better is None and by_name["base_rate"].better is None and by_name["k"].better is None


def test_sparkline_breaks_at_gaps_and_escapes_labels():
    svg = str(charts.sparkline([1, 2, None, 3, 4], label="<script>x</script>"))
    assert svg.count("<polyline") == 2
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_bar_chart_prints_each_value():
    svg = str(charts.bar_chart(["a", "b"], [3, 12], title="t"))
    assert ">3<" in svg and ">12<" in svg and svg.startswith('<div class="chart-wrap"><svg')


def test_heat_color_keeps_text_readable():
    assert "color:#ffffff" in charts.heat_color(1.0)
    assert "color:#1f2937" in charts.heat_color(0.1)
    assert charts.heat_color(None).startswith("background:#f9fafb")


def test_window_previous_has_the_same_length():
    w = Window(datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC))
    assert w.previous() == Window(datetime(2026, 3, 31, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC))
