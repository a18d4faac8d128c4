"""Staff reports in Simplified Chinese: every page's filter labels, table headers, figure and metric names, chart
titles and legends, and empty states are translated; the CSV exports keep their English column names; date inputs
keep ISO values (an <input type="date"> shows nothing for a localized one)."""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from django.utils import translation

from tests.analytics.reports.test_metrics import ledger  # noqa: F401  (the hand-built ledger fixture)
from tests.analytics.reports.test_views import MAY_QUERY, PAGES, scored, url  # noqa: F401

# Per page: English labels that must be gone in zh-hans, and the Chinese that must show instead.
FILTERS_EN = ["End (inclusive)", ">Start<", "All tiers", "All segments"]
FILTERS_ZH = ["结束日期（含）", "开始日期", "全部等级", "全部分群"]
FORM_ZH = {*FILTERS_ZH, "获客来源", "全部来源", "任意首门课程", "最低流失风险", "续费期限内（天）"}
EXPECTED: dict[str, tuple[list[str], list[str]]] = {
    "overview": (
        [*FILTERS_EN, "Active members", "Paying members", "Churn rate", "Repurchase rate (", "Median days to 2nd",
         "Revenue from repeat buyers", "last 12 months", "MRR by month end", "Twelve-month trend", ">Figure<",
         "at the window's end", " pts<"],
        [*FILTERS_ZH, "活跃会员", "付费会员", "流失率", "复购率（30 天）", "首购到复购的天数中位数", "复购者带来的收入",
         "最近 12 个月", "月末 MRR", "十二个月趋势", ">指标<", "时间窗结束时持有会员资格"],
    ),
    "cohorts": (
        ["End (inclusive)", "All tiers", "Acquisition source", "All sources", "Any first course", "Subscription retention",
         "Repurchase (cumulative)", "Revenue retention", "join month", '<th scope="col">m0</th>', ">Cohort<"],
        ["结束日期（含）", "全部等级", "获客来源", "全部来源", "任意首门课程", "订阅留存", "复购（累计）", "收入留存",
         "按注册月份", "第 0 月", "首购月份"],
    ),
    "repurchase": (
        [*FILTERS_EN, "Days from first to second purchase", "Next-purchase probability of one-order buyers",
         "Buyers by days to second purchase", "First-time buyers", "Bought again", "0–7 d", "> 365 d",
         "Which first courses lead"],
        [*FILTERS_ZH, "首购到复购的天数", "仅下过一单的购买者的下次购买概率", "按复购间隔天数划分的购买者",
         "首次购买者", "再次购买", "0–7 天", "&gt; 365 天", "哪些首门课程带来复购"],
    ),
    "churn": (
        [*FILTERS_EN, "Min. churn risk", "Renews within", "Members by churn risk", "Predicted vs actual by decile",
         ">predicted<", ">actual<", ">Decile<"],
        [*FILTERS_ZH, "最低流失风险", "续费期限内（天）", "按流失风险划分的会员", "按十分位组的预测值与实际值",
         ">预测<", ">实际<", ">十分位组<"],
    ),
    "models": (
        ["End (inclusive)", ">Start<", "ROC AUC", "Brier score", "Feature importance, model", "Days since last purchase",
         ">Precision@5<", "Online funnel", "Impressions", "Purchases after a click", "Trained ", " as of ", ">Step<"],
        ["结束日期（含）", "开始日期", "ROC 曲线下面积（AUC）", "Brier 分数", "特征重要性，模型 v", "距上次购买天数",
         ">精确率@5<", "线上漏斗", "曝光", "点击后购买", "训练于", "截至", ">步骤<", ">基线<"],
    ),
    "segments": (
        ["End (inclusive)", ">Start<", "Segment profiles", "Segment sizes over time", "Cancellation reasons by segment",
         "Members per segment", "Days since last purchase", ">Renewal rate<", ">Orders<"],
        ["结束日期（含）", "开始日期", "分群画像", "分群规模变化", "各分群的取消原因", "各分群会员数（最近一次运行）",
         "距上次购买天数", ">续费率<", ">订单数<"],
    ),
    "campaigns": (
        [">Campaign<", ">Status<", ">Audience<", ">Treatment<", ">Starts<", "Churn-risk band", ">Active<"],
        [">营销活动<", "目标人群", "流失风险区间", ">有效<"],
    ),
}


def test_every_report_page_is_covered():
    assert sorted(EXPECTED) == sorted(PAGES)


@pytest.fixture
def zh_client(staff_client):
    staff_client.cookies["django_language"] = "zh-hans"
    return staff_client


@pytest.mark.parametrize("page", PAGES)
def test_report_page_in_chinese(zh_client, scored, page):  # noqa: F811
    response = zh_client.get(url(page, **MAY_QUERY))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'lang="zh-hans"' in html
    english, chinese = EXPECTED[page]
    assert [s for s in english if s in html] == []
    assert [s for s in chinese if s not in html] == []


@pytest.mark.parametrize("page", PAGES)
def test_the_htmx_fragment_is_translated_too(zh_client, scored, page):  # noqa: F811
    fragment = zh_client.get(url(page, **MAY_QUERY), headers={"HX-Request": "true"}).content.decode()
    english, chinese = EXPECTED[page]
    # The fragment has no filter form; its report part must be Chinese as well.
    assert [s for s in chinese if s not in FORM_ZH and s not in fragment] == []
    assert [s for s in english if s in fragment] == []


def test_english_pages_keep_english_labels(staff_client, scored):  # noqa: F811
    html = staff_client.get(url("overview", **MAY_QUERY)).content.decode()
    assert "Active members" in html and "End (inclusive)" in html and "活跃会员" not in html
    html = staff_client.get(url("models", **MAY_QUERY)).content.decode()
    assert "ROC AUC" in html and "Online funnel" in html and "曝光" not in html


def test_date_inputs_keep_iso_values_and_numbers_parse(zh_client, ledger):  # noqa: F811
    html = zh_client.get(url("overview", **MAY_QUERY)).content.decode()
    assert 'type="date"' in html and 'value="2026-05-01"' in html and 'value="2026-05-31"' in html
    # MRR at 06-01 is 90.00 and the renewal rate 50 % (test_reports_views): numbers are not localized.
    assert "90.00" in html and "50.0%" in html


def test_default_window_dates_are_iso_in_chinese(zh_client, db):
    html = zh_client.get(url("segments")).content.decode()
    # The unbound form shows today's window; a localized value (2026/10/31) would show an empty date input.
    assert 'type="date"' in html
    values = [part.split('"', 1)[0] for part in html.split('type="date"')[1:] for part in [part.split('value="', 1)[-1]]]
    assert len(values) == 2 and all(len(v) == 10 and v[4] == "-" and v[7] == "-" for v in values)


CSV_HEADERS = {
    ("overview", "overview"): ["figure", "value", "previous period", "change", "unit"],
    ("repurchase", "gaps"): ["days", "buyers"],
    ("repurchase", "first_courses"): ["first course", "first-time buyers", "bought again", "rate"],
    ("churn", "calibration"): ["decile", "members", "predicted", "actual"],
    ("models", "funnel"): ["step", "count", "rate"],
    ("models", "models"): ["model", "kind", "serving", "metric", "value", "baseline name", "baseline"],
    ("segments", "profiles"): ["segment", "members", "recency_days", "frequency", "renewed", "ended", "renewal rate"],
    ("campaigns", "campaigns"): ["campaign", "status", "audience", "treatment", "control", "starts", "ends"],
}


@pytest.mark.parametrize("page,table", list(CSV_HEADERS))
def test_csv_exports_stay_english_in_chinese(zh_client, scored, page, table):  # noqa: F811
    response = zh_client.get(url(page, **MAY_QUERY, format="csv", table=table))
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == CSV_HEADERS[(page, table)]
    if table == "overview":
        assert [r[0] for r in rows[1:3]] == ["Active members", "Paying members"]
    if table == "funnel":
        assert [r[0] for r in rows[1:]] == ["impressions", "clicks", "purchases after a click"]
    if table == "campaigns":
        assert rows[1][1:3] == ["active", "at_risk"]


def test_at_risk_csv_header_stays_english_in_chinese(zh_client, scored):  # noqa: F811
    response = zh_client.get(url("churn", format="csv"))
    header = next(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert header[:3] == ["member", "email", "tier"] and "churn risk" in header


def test_cancellation_reasons_follow_the_reader_not_the_cache(staff_client, scored):  # noqa: F811
    """The segment report is cached; reasons are stored as codes, so whoever computes it first decides nothing."""
    from analytics.models import SegmentAssignment
    from members.models import Subscription

    member = SegmentAssignment.objects.filter(label="at_risk").first().member
    Subscription.objects.filter(member=member).update(
        canceled_at=datetime(2026, 5, 10, tzinfo=UTC),
        cancellation_reason=Subscription.CancellationReason.TOO_EXPENSIVE,
    )
    staff_client.cookies["django_language"] = "zh-hans"
    zh = staff_client.get(url("segments", **MAY_QUERY)).content.decode()
    with translation.override("zh-hans"):
        expected_zh = str(Subscription.CancellationReason.TOO_EXPENSIVE.label)
    assert expected_zh != "Too expensive" and expected_zh in zh
    staff_client.cookies["django_language"] = "en"
    en = staff_client.get(url("segments", **MAY_QUERY)).content.decode()  # a cache hit: same report object
    assert "Too expensive" in en and expected_zh not in en
    export = staff_client.get(url("segments", **MAY_QUERY, format="csv", table="reasons"))
    staff_client.cookies["django_language"] = "zh-hans"
    export_zh = staff_client.get(url("segments", **MAY_QUERY, format="csv", table="reasons"))
    assert export.content == export_zh.content and b"Too expensive" in export.content
