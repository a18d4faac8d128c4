"""Staff retention reports. Thin views: permission, filter form, one report function, render (page, htmx fragment
or CSV). Every figure is computed in analytics/reports and defined in docs/METRICS.md."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import wraps
from typing import Any

from dateutil.relativedelta import relativedelta
from django import forms
from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone, translation
from django.utils.functional import cached_property
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from analytics.models import Campaign, SegmentAssignment, SegmentRun
from analytics.permissions import VIEW_REPORTS, has_capability
from analytics.reports import (
    charts,
    churn,
    cohorts,
    metrics,
    models_card,
    repurchase,
    revenue,
    segments,
)
from analytics.reports import labels as labels_map
from analytics.reports.charts import format_value, heat_color
from analytics.reports.common import (
    Filters,
    Window,
    reporting_today,
    start_of_day,
)
from analytics.reports.export import FORMATS, Table, stream_response, table_response
from config.forms import BoundedDateField
from members.accounts.selectors import AcquisitionSource
from members.catalogue import selectors as catalogue_selectors

REPORT_PERMISSION = VIEW_REPORTS
PAGE_SIZE = 25
AT_RISK_CHUNK = 5000


def reports_access(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Anonymous → login; signed in without the report permission (learners, other staff) → 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not has_capability(user, REPORT_PERMISSION):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


# ----------------------------------------------------------------------------------------------------------------
# Filters


class ReportFilterForm(forms.Form):
    # <input type="date"> takes ISO values only; a localized value (zh: 2026/10/31) would show an empty field.
    start = BoundedDateField(required=False, label=gettext_lazy("Start"),
                            widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}))
    end = BoundedDateField(required=False, label=gettext_lazy("End (inclusive)"),
                          widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}))
    tier = forms.ModelChoiceField(queryset=catalogue_selectors.tiers().order_by("order", "name"), required=False,
                                  label=gettext_lazy("Tier"), empty_label=gettext_lazy("All tiers"))
    segment = forms.ChoiceField(required=False, label=gettext_lazy("Segment"))
    source = forms.ChoiceField(required=False, label=gettext_lazy("Acquisition source"),
                               choices=[("", gettext_lazy("All sources")), *AcquisitionSource.choices])
    course = forms.ModelChoiceField(queryset=catalogue_selectors.courses().filter(is_generic=False).order_by("title"),
                                    required=False, label=gettext_lazy("First course"),
                                    empty_label=gettext_lazy("Any first course"))

    def __init__(self, *args: Any, fields: Sequence[str] = ("start", "end", "tier", "segment"), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in list(self.fields):
            if name not in fields:
                del self.fields[name]
        if "segment" in self.fields:
            # The latest run's labels in one query (the run as a subquery, as member_filter_q finds it).
            latest_run = SegmentRun.objects.order_by("-as_of", "-pk").values("pk")[:1]
            labels = (
                SegmentAssignment.objects.filter(run_id=Subquery(latest_run)).values_list("label", flat=True)
                .distinct().order_by("label")
            )
            # The value stays the stored label (what the filter matches); only the text is translated.
            self.fields["segment"].choices = [
                ("", gettext_lazy("All segments")),
                *[(label, labels_map.label(label, labels_map.SEGMENTS)) for label in labels],
            ]


@dataclass(frozen=True)
class Selection:
    window: Window
    filters: Filters
    form: ReportFilterForm
    query: str  # the filter part of the query string, for CSV and pager links


def _selection(request: HttpRequest, *, default_days: int, fields: Sequence[str] = ("start", "end", "tier", "segment")
               ) -> Selection:
    today = reporting_today(timezone.now())
    # An unbound form shows the default window in the date inputs, so staff see which days they are looking at.
    initial = {"start": today - timedelta(days=default_days - 1), "end": today}
    form = ReportFilterForm(request.GET or None, fields=fields, initial=initial)
    data: dict[str, Any] = {}
    if form.is_bound:
        # An invalid field (a date out of range) drops out of cleaned_data and shows its error; the rest still apply.
        form.is_valid()
        data = form.cleaned_data
    end_day: date = data.get("end") or today
    start_day: date = data.get("start") or end_day - timedelta(days=default_days - 1)
    if start_day > end_day:
        start_day, end_day = end_day, start_day
    window = Window(start_of_day(start_day), start_of_day(end_day + timedelta(days=1)))
    tier = data.get("tier")
    course = data.get("course")
    filters = Filters(
        tier_id=tier.pk if tier else None, segment=data.get("segment") or "", source=data.get("source") or "",
        first_course_id=course.pk if course else None,
    )
    params = request.GET.copy()
    for key in ("format", "table", "page"):
        params.pop(key, None)
    return Selection(window, filters, form, params.urlencode())


def _render(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    name = f"{template}#report" if request.htmx else template
    return render(request, name, context)


def _wants_csv(request: HttpRequest) -> bool:
    """An export was asked for: ?format=csv or ?format=xlsx (every report table has both)."""
    return _export_format(request) in FORMATS


def _export_format(request: HttpRequest) -> str:
    return request.GET.get("format", "")


def _pick_table(request: HttpRequest, tables: dict[str, Table]) -> HttpResponse:
    name = request.GET.get("table") or next(iter(tables))
    if name not in tables:
        raise Http404("No such table.")
    return table_response(tables[name], f"{name}-{timezone.now():%Y%m%d}", _export_format(request))


@dataclass(frozen=True)
class Shown:
    """A table as the page shows it: the CSV table plus a unit per column for formatting.

    The CSV keeps its English column names and cells (a contract with other tools); the page shows the columns
    through labels.COLUMNS (and features, segments) and, where given, `display` rows whose words are translated."""

    key: str
    title: str
    table: Table
    units: tuple[str, ...]
    display: tuple[tuple[object, ...], ...] | None = None

    @property
    def header(self) -> tuple[str, ...]:
        return tuple(labels_map.label(h) for h in self.table.header)

    @property
    def rows(self) -> list[list[str]]:
        source = self.table.rows if self.display is None else self.display
        return [
            [format_value(float(v), u) if isinstance(v, (int, float, Decimal)) and u != "text" else ("—" if v is None else str(v))
             for v, u in zip(row, self.units, strict=True)]
            for row in source
        ]


def _shown(key: str, title: str, header: Sequence[str], rows: Sequence[Sequence[object]], units: Sequence[str],
           display: Sequence[Sequence[object]] | None = None) -> Shown:
    return Shown(key, title, Table(key, tuple(header), tuple(tuple(r) for r in rows)), tuple(units),
                 None if display is None else tuple(tuple(r) for r in display))


PAGE_TITLES = {
    "overview": gettext_lazy("Overview"), "cohorts": gettext_lazy("Cohorts"), "repurchase": gettext_lazy("Repurchase"),
    "churn": gettext_lazy("Churn risk"), "models": gettext_lazy("Model card"), "segments": gettext_lazy("Segments"),
    "campaigns": gettext_lazy("Campaigns"), "revenue": gettext_lazy("Revenue"),
}


def _base_context(sel: Selection, page_name: str, **extra: Any) -> dict[str, Any]:
    return {"form": sel.form, "window": sel.window, "filters": sel.filters, "query": sel.query, "page_name": page_name,
            "page_title": PAGE_TITLES[page_name], "REPORTING_TIME_ZONE": settings.REPORTING_TIME_ZONE, **extra}


# ----------------------------------------------------------------------------------------------------------------
# 1. Overview


@reports_access
def overview(request: HttpRequest) -> HttpResponse:
    sel = _selection(request, default_days=30)
    report = metrics.overview(window=sel.window, filters=sel.filters)
    months = [f"{m.start:%Y-%m}" for m in report.months]
    names = {f.key: labels_map.figure_label(f.key, dict(f.params)) for f in report.figures}
    cards = [
        {
            "figure": f,
            "label": names[f.key],
            "detail": labels_map.figure_detail(f.key, dict(f.params), f.detail),
            "value": format_value(f.value, f.unit),
            "previous": format_value(f.previous, f.unit),
            "change": _change_text(f),
            "spark": charts.sparkline([p.value for p in f.trend],
                                      label=_("%(figure)s, last 12 months") % {"figure": names[f.key]}),
        }
        for f in report.figures
    ]
    summary = _shown(
        "overview", gettext_lazy("Figures"), ["figure", "value", "previous period", "change", "unit"],
        [(f.label, f.value, f.previous, f.change, f.unit) for f in report.figures],
        ["text", "probability", "probability", "probability", "text"],
    )
    trend = _shown(
        "trend", gettext_lazy("Twelve-month trend"), ["figure", *months],
        [(f.label, *[p.value for p in f.trend]) for f in report.figures],
        ["text", *["probability"] * len(months)],
    )
    if _wants_csv(request):
        return _pick_table(request, {"overview": summary.table, "trend": trend.table})
    # The on-page tables format each row by the figure's own unit.
    trend_rows = [[names[f.key], *[format_value(p.value, f.unit) for p in f.trend]] for f in report.figures]
    # The last month is cut at the window's end (reports.common.trailing_months): mark it as partial when it is.
    last = report.months[-1]
    partial = last.end < last.start + relativedelta(months=1)
    big = {key: charts.line_chart(months, [p.value for p in report.figure(key).trend], unit=unit, title=str(title),
                                  partial_last=partial)
           for key, unit, title in (
               ("mrr", "money", gettext_lazy("MRR by month end")),
               ("repurchase_90d", "percent", gettext_lazy("Repurchase within 90 days, by first-purchase month")))}
    return _render(request, "analytics/overview.html", _base_context(
        sel, "overview", report=report, cards=cards, months=months, trend_rows=trend_rows, charts=big,
    ))


def _change_text(f: metrics.Figure) -> str:
    if f.change is None:
        return "—"
    if f.unit == "percent":
        return _("%(points)s pts") % {"points": f"{f.change * 100:+.1f}"}
    if f.unit == "money":
        return f"{f.change:+,.2f}"
    if f.unit == "days":
        return _("%(days)s d") % {"days": f"{f.change:+.1f}"}
    return f"{f.change:+,.0f}"


# ----------------------------------------------------------------------------------------------------------------
# 2. Cohorts


@reports_access
def cohort_view(request: HttpRequest) -> HttpResponse:
    sel = _selection(request, default_days=365, fields=("end", "tier", "source", "course"))
    report = cohorts.cohort_report(as_of=sel.window.end, filters=sel.filters)
    tables = {
        t.key: Table(t.key, ("cohort", "size", *[f"m{m}" for m in t.offsets]),
                     tuple((r.cohort, r.size, *r.values) for r in t.rows))
        for t in report.tables
    }
    if _wants_csv(request):
        return _pick_table(request, tables)
    heatmaps = [
        {
            "table": t,
            "title": labels_map.COHORT_TABLES[t.key][0] if t.key in labels_map.COHORT_TABLES else t.title,
            "basis": labels_map.COHORT_TABLES[t.key][1] if t.key in labels_map.COHORT_TABLES else t.basis,
            "rows": [
                {"cohort": r.cohort, "size": r.size,
                 "cells": [(format_value(v, "percent"), heat_color(v)) for v in r.values]}
                for r in t.rows
            ],
        }
        for t in report.tables
    ]
    return _render(request, "analytics/cohorts.html", _base_context(sel, "cohorts", report=report, heatmaps=heatmaps))


# ----------------------------------------------------------------------------------------------------------------
# 3. Repurchase for one-off buyers


@reports_access
def repurchase_view(request: HttpRequest) -> HttpResponse:
    sel = _selection(request, default_days=365)
    report = repurchase.repurchase_report(window=sel.window, as_of=sel.window.end, filters=sel.filters)
    gaps = _shown("gaps", gettext_lazy("Days from first to second purchase"), ["days", "buyers"],
                  [(b.label, b.count) for b in report.gap_bins], ["text", "count"],
                  display=[(labels_map.days_bin(b.label), b.count) for b in report.gap_bins])
    probs = _shown("probabilities", gettext_lazy("Next-purchase probability of one-order buyers"),
                   ["probability", "members"],
                   [(b.label, b.count) for b in report.probability_bins], ["text", "count"])
    transitions = _shown("transitions", gettext_lazy("First course → next course"),
                         ["first course", "next course", "buyers"],
                         [(t.from_course, t.to_course, t.buyers) for t in report.transitions], ["text", "text", "count"])
    firsts = _shown("first_courses", gettext_lazy("Which first courses lead to a second purchase"),
                    ["first course", "first-time buyers", "bought again", "rate"],
                    [(r.course, r.buyers, r.came_back, r.rate) for r in report.first_courses],
                    ["text", "count", "count", "percent"])
    tables = {s.key: s for s in (gaps, probs, transitions, firsts)}
    if _wants_csv(request):
        return _pick_table(request, {k: s.table for k, s in tables.items()})
    context = _base_context(
        sel, "repurchase", report=report, tables=tables,
        gap_chart=charts.bar_chart([labels_map.days_bin(b.label) for b in report.gap_bins],
                                   [b.count for b in report.gap_bins], title=_("Buyers by days to second purchase")),
        prob_chart=charts.bar_chart([b.label for b in report.probability_bins],
                                    [b.count for b in report.probability_bins],
                                    title=_("One-order buyers by predicted next-purchase probability")),
    )
    return _render(request, "analytics/repurchase.html", context)


# ----------------------------------------------------------------------------------------------------------------
# 4. Churn risk


class RiskFilterForm(forms.Form):
    min_risk = forms.FloatField(required=False, min_value=0, max_value=1, label=gettext_lazy("Min. churn risk"))
    within = forms.IntegerField(required=False, min_value=0, max_value=400, label=gettext_lazy("Renews within (days)"))


AT_RISK_HEADER = ("member", "email", "tier", "period", "days to renewal", "renewal probability", "churn risk",
                  "top reasons", "last activity", "scored at")


def _at_risk_row(values: Sequence[Any], as_of: datetime) -> tuple[object, ...]:
    """One at-risk line (page and CSV) from a churn.AT_RISK_FIELDS tuple."""
    (display_name, email, tier, period, period_end, probability, top_reasons, scored_at, last_event_at,
     last_learning_at) = values
    reasons = churn.risk_drivers(top_reasons or [])
    reason_text = "; ".join(
        str(r.get("text") or r.get("label") or r.get("feature") or r) if isinstance(r, dict) else str(r)
        for r in reasons[:3]
    )
    last_activity = churn.last_activity(last_event_at, last_learning_at)
    return (
        display_name or email.split("@", 1)[0],  # User.name, without building a User per row
        email, tier, period,
        (period_end - as_of).days,
        probability, None if probability is None else 1 - probability, reason_text,
        f"{last_activity:%Y-%m-%d}" if last_activity else None,
        f"{scored_at:%Y-%m-%d}" if scored_at else None,
    )


@reports_access
def churn_view(request: HttpRequest) -> HttpResponse:
    sel = _selection(request, default_days=30)
    model = churn.serving_model()
    horizon = churn.default_within_days(model)
    # "Renews within" defaults to the model's horizon (see churn.default_within_days) and stays editable: a submitted
    # empty value (or "any") lists every live membership.
    data = request.GET.copy()
    if "within" not in data and horizon is not None:
        data["within"] = str(horizon)
    elif data.get("within", "").strip().lower() == "any":
        data["within"] = ""
    risk_form = RiskFilterForm(data)
    risk = risk_form.cleaned_data if risk_form.is_valid() else {}
    now = timezone.now()
    # The distribution (cached) names the latest scoring batch; the at-risk list joins that batch.
    distribution = churn.risk_distribution(filters=sel.filters, model=model)
    qs = churn.at_risk_queryset(as_of=now, filters=sel.filters, min_risk=risk.get("min_risk"),
                                renewal_within_days=risk.get("within"), model=model,
                                scored_as_of=distribution.as_of)
    table = request.GET.get("table") or "at_risk"
    rows_qs = churn.at_risk_values(qs)
    if _wants_csv(request) and table == "at_risk":
        # Streamed: a server-side cursor hands over AT_RISK_CHUNK rows at a time, written out as they arrive.
        return stream_response(AT_RISK_HEADER,
                               (_at_risk_row(r, now) for r in rows_qs.iterator(chunk_size=AT_RISK_CHUNK)),
                               f"at-risk-{now:%Y%m%d}", _export_format(request))
    calibration = churn.calibration(now=now)
    validation = churn.validation_calibration(model)
    dist = _shown("distribution", gettext_lazy("Members by churn risk"), ["churn risk", "members"],
                  [(b.label, b.count) for b in distribution.bins], ["text", "count"])
    calib = _shown("calibration", gettext_lazy("Calibration"), ["decile", "members", "predicted", "actual"],
                   [(r.decile, r.members, r.predicted, r.actual) for r in (calibration.rows if calibration else ())],
                   ["count", "count", "percent", "percent"])
    if _wants_csv(request):
        return _pick_table(request, {"distribution": dist.table, "calibration": calib.table})
    count_key = churn.at_risk_count_params(filters=sel.filters, min_risk=risk.get("min_risk"),
                                           within=risk.get("within"), model=model, batch=distribution.as_of, now=now)
    page = CachedCountPaginator(rows_qs, PAGE_SIZE, count_key=count_key).get_page(request.GET.get("page"))
    rows = [_at_risk_row(s, now) for s in page.object_list]
    shown_rows = [
        [r[0], r[2], r[4], format_value(r[5], "probability"), format_value(r[6], "percent"), r[7] or "—", r[8] or "—"]
        for r in rows
    ]
    context = _base_context(
        sel, "churn", risk_form=risk_form, page=page, rows=shown_rows, distribution=distribution, calibration=calibration,
        dist=dist, calib=calib,
        dist_chart=charts.bar_chart([b.label for b in distribution.bins], [b.count for b in distribution.bins],
                                    title=_("Members by churn risk"), color="#dc2626") if distribution.bins else None,
        calib_chart=_calibration_chart(calibration, _("Predicted vs actual by decile"), decile=True),
        risk_query=_without(request, ("page", "format", "table")), validation=validation, horizon=horizon,
        within=risk.get("within"),
        validation_chart=_calibration_chart(validation, _("Held-out validation: predicted vs observed by bin"),
                                            decile=False),
    )
    return _render(request, "analytics/churn.html", context)


class CachedCountPaginator(Paginator):
    """The list's total comes from the report cache (counting every live membership is the expensive part of a
    page); each page itself is one LIMIT/OFFSET query."""

    def __init__(self, *args: Any, count_key: dict[str, object], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.count_key = count_key

    @cached_property
    def count(self) -> int:
        return churn.at_risk_count(self.object_list, self.count_key)


def _calibration_chart(calibration: churn.Calibration | None, title: str, *, decile: bool) -> SafeString | None:
    if calibration is None or not calibration.rows:
        return None
    return charts.paired_bar_chart(
        [f"{'D' if decile else 'B'}{r.decile}" for r in calibration.rows],
        [r.predicted for r in calibration.rows], [r.actual for r in calibration.rows],
        names=(_("predicted"), _("actual")), unit="percent", title=title,
    )


def _without(request: HttpRequest, keys: Sequence[str]) -> str:
    params = request.GET.copy()
    for key in keys:
        params.pop(key, None)
    return params.urlencode()


# ----------------------------------------------------------------------------------------------------------------
# 5. Model card


@reports_access
def model_card_view(request: HttpRequest) -> HttpResponse:
    sel = _selection(request, default_days=30, fields=("start", "end"))
    cards = models_card.model_cards()
    recs = models_card.recommendation_cards()
    funnel = models_card.recommendation_funnel(window=sel.window)
    model_table = _shown(
        "models", gettext_lazy("Model metrics"), ["model", "kind", "serving", "metric", "value", "baseline name", "baseline"],
        [(f"v{c.pk} {c.algorithm}", c.kind, c.is_serving, m.name, m.value, name, b)
         for c in cards for m in c.metrics for name, b in (zip(c.baseline_names, m.baselines, strict=True)
                                                          if c.baseline_names else [("", None)])],
        ["text", "text", "text", "text", "probability", "text", "probability"],
    )
    rec_table = _shown(
        "recommendations", gettext_lazy("Recommendation quality"),
        ["run", "as of", "k", "current", "metric", "value", "baseline name", "baseline"],
        [(r.pk, f"{r.as_of:%Y-%m-%d}", r.k, r.is_current, m.name, m.value, name, b)
         for r in recs for m in r.metrics for name, b in (zip(r.baseline_names, m.baselines, strict=True)
                                                          if r.baseline_names else [("", None)])],
        ["count", "text", "count", "text", "text", "probability", "text", "probability"],
    )
    funnel_rows = [("impressions", funnel.impressions, None), ("clicks", funnel.clicks, funnel.click_rate),
                   ("purchases after a click", funnel.purchases, funnel.purchase_rate)]
    funnel_table = _shown(
        "funnel", gettext_lazy("Online funnel"), ["step", "count", "rate"], funnel_rows, ["text", "count", "percent"],
        display=[(labels_map.label(step, labels_map.FUNNEL_STEPS), *rest) for step, *rest in funnel_rows],
    )
    if _wants_csv(request):
        return _pick_table(request, {t.key: t.table for t in (model_table, rec_table, funnel_table)})
    importance = {
        c.pk: charts.hbar_chart([labels_map.label(k, labels_map.FEATURES) for k, _v in c.importance],
                                [v for _k, v in c.importance], unit="probability",
                                title=_("Feature importance, model v%(version)s") % {"version": c.pk})
        for c in cards if c.importance
    }
    return _render(request, "analytics/model_card.html", _base_context(
        sel, "models", cards=[_card_display(c) for c in cards], recs=[_card_display(r) for r in recs], funnel=funnel,
        funnel_table=funnel_table, importance=importance,
    ))


@dataclass(frozen=True)
class CardShown:
    """A model or recommendation card with its metric and baseline names worded for the page (the card keeps the
    keys; the CSV writes those)."""

    card: Any
    kind_label: str
    baseline_labels: tuple[str, ...]
    metric_rows: tuple[tuple[str, models_card.MetricRow], ...]  # (label, row); row.name is the key

    def __getattr__(self, name: str) -> Any:
        if name == "card":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.card, name)


def _card_display(card: models_card.ModelCard | models_card.RecommendationCard) -> CardShown:
    return CardShown(
        card=card,
        kind_label=labels_map.label(getattr(card, "kind", ""), labels_map.MODEL_KINDS),
        baseline_labels=tuple(labels_map.label(n, labels_map.BASELINES) for n in card.baseline_names),
        metric_rows=tuple((labels_map.metric_label(m.name), m) for m in card.metrics),
    )


# ----------------------------------------------------------------------------------------------------------------
# 6. Segments


@reports_access
def segments_view(request: HttpRequest) -> HttpResponse:
    sel = _selection(request, default_days=90, fields=("start", "end"))
    report = segments.segment_report(window=sel.window)
    sizes = _shown("sizes", gettext_lazy("Segment sizes over time"), ["as of", *report.labels],
                   [(f"{p.as_of:%Y-%m-%d}", *[n for _, n in p.sizes]) for p in report.sizes_over_time],
                   ["text", *["count"] * len(report.labels)])
    profile_rows = [(r.label, r.members, *[v for _, v in r.profile], r.renewed, r.ended, r.renewal_rate)
                    for r in report.rows]
    profiles = _shown(
        "profiles", gettext_lazy("Segment profiles"),
        ["segment", "members", *report.profile_keys, "renewed", "ended", "renewal rate"], profile_rows,
        ["text", "count", *["probability"] * len(report.profile_keys), "count", "count", "percent"],
        display=[(_segment(row[0]), *row[1:]) for row in profile_rows],
    )
    reason_rows = [(r.label, reason, n) for r in report.rows for reason, n in r.cancellation_reasons]
    with translation.override("en"):
        # The CSV names the reason in English, as it always has (a stable value for other tools).
        reason_csv = [(label, segments.reason_label(reason), n) for label, reason, n in reason_rows]
    reasons = _shown(
        "reasons", gettext_lazy("Cancellation reasons by segment"), ["segment", "reason", "members"], reason_csv,
        ["text", "text", "count"],
        display=[(_segment(label), segments.reason_label(reason), n) for label, reason, n in reason_rows],
    )
    if _wants_csv(request):
        return _pick_table(request, {t.key: t.table for t in (sizes, profiles, reasons)})
    size_chart: SafeString | None = None
    if report.rows:
        size_chart = charts.bar_chart([_segment(r.label) for r in report.rows], [r.members for r in report.rows],
                                      title=_("Members per segment (latest run)"))
    return _render(request, "analytics/segments.html", _base_context(
        sel, "segments", report=report, sizes=sizes, profiles=profiles, reasons=reasons, size_chart=size_chart,
    ))


def _segment(label: str) -> str:
    return labels_map.label(label, labels_map.SEGMENTS)


# ----------------------------------------------------------------------------------------------------------------
# 7. Campaigns


def _result_rows(result: Any) -> list[tuple[str, object]]:
    """campaign_results may return a dataclass or a dict; show its scalar fields as label/value pairs."""
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        data = dataclasses.asdict(result)
    elif isinstance(result, dict):
        data = result
    else:
        return [("result", str(result))]
    return [(str(k), v) for k, v in data.items() if not isinstance(v, (dict, list, tuple))]


def _pp(value: float | None) -> str:
    """A difference of proportions in signed percentage points."""
    return "—" if value is None else f"{value * 100:+.1f}"


def _result_display(result: Any) -> list[tuple[str, str]]:
    """A campaign result as people read it: groups with their rates, uplift and its 95% CI in percentage points."""
    if not hasattr(result, "treatment"):
        return [(k, "—" if v is None else str(v)) for k, v in _result_rows(result)]
    rows: list[tuple[str, str]] = []
    for label, group in ((_("Treatment"), result.treatment), (_("Control"), result.control)):
        rate = f"{group.rate * 100:.1f}%" if group.rate is not None else "—"
        rows.append((label, _("%(conversions)s of %(n)s converted (%(rate)s)") % {
            "conversions": group.conversions, "n": group.n, "rate": rate}))
    if result.uplift is None:
        rows.append((_("Uplift"), _("Not measurable yet: needs members in both groups.")))
    else:
        rows.append((_("Uplift"), _("%(uplift)s pp") % {"uplift": _pp(result.uplift)}))
        rows.append((_("95% CI"), f"[{_pp(result.ci_low)}, {_pp(result.ci_high)}] pp · {result.ci_method}"))
        rows.append((_("Wald CI (for comparison)"), f"[{_pp(result.wald_low)}, {_pp(result.wald_high)}] pp"))
    rows += [
        (_("Coupons issued / redeemed"), f"{result.coupons_issued} / {result.coupons_redeemed}"),
        (_("Discount given"), format_value(float(result.discount_given), "money")),
        (_("Incremental revenue (net of discounts)"), format_value(float(result.incremental_revenue), "money")),
    ]
    return rows


@reports_access
def campaigns_view(request: HttpRequest) -> HttpResponse:
    sel = _selection(request, default_days=30, fields=())
    campaigns = list(
        Campaign.objects.annotate(
            treatment=Count("assignments", filter=Q(assignments__group="treatment")),
            control=Count("assignments", filter=Q(assignments__group="control")),
        ).order_by("-created_at")[:50]
    )
    try:
        from analytics.outreach.campaigns import campaign_results
    except ImportError:
        campaign_results = None
    raw_results = {c.pk: campaign_results(c) for c in campaigns} if campaign_results else {}
    results = {pk: _result_rows(r) for pk, r in raw_results.items()}
    campaign_rows = [(c.name, c.status, c.audience, c.treatment, c.control, f"{c.starts_at:%Y-%m-%d}",
                      f"{c.ends_at:%Y-%m-%d}" if c.ends_at else None) for c in campaigns]
    table = _shown(
        "campaigns", gettext_lazy("Campaigns"), ["campaign", "status", "audience", "treatment", "control", "starts", "ends"],
        campaign_rows, ["text", "text", "text", "count", "count", "text", "text"],
        display=[(c.name, c.get_status_display(), c.get_audience_display(), *row[3:])
                 for c, row in zip(campaigns, campaign_rows, strict=True)],
    )
    result_table = _shown(
        "results", gettext_lazy("Uplift results"), ["campaign", "measure", "value"],
        [(c.name, k, v) for c in campaigns for k, v in results.get(c.pk, [])], ["text", "text", "probability"],
    )
    if _wants_csv(request):
        return _pick_table(request, {"campaigns": table.table, "results": result_table.table})
    return _render(request, "analytics/campaigns.html", _base_context(
        sel, "campaigns", campaigns=campaigns, table=table, results_available=campaign_results is not None,
        results={pk: _result_display(r) for pk, r in raw_results.items()},
    ))


# ----------------------------------------------------------------------------------------------------------------
# Revenue: MRR movements, ARPU, LTV, trial-to-paid, dunning recovery (analytics/reports/revenue.py)

MOVEMENT_COLORS = {"new": "#2563eb", "reactivated": "#0891b2", "expansion": "#16a34a", "contraction": "#f59e0b",
                   "churned": "#dc2626"}


@reports_access
def revenue_view(request: HttpRequest) -> HttpResponse:
    sel = _selection(request, default_days=30, fields=("start", "end", "tier", "segment", "source"))
    report = revenue.revenue_report(window=sel.window, filters=sel.filters)
    movement_rows = [
        (m.label, m.amount("start"), m.amount("new"), m.amount("expansion"), m.amount("contraction"),
         m.amount("churned"), m.amount("reactivated"), m.amount("end"), m.paying_end, m.revenue, m.arpu)
        for m in report.months
    ]
    table = _shown(
        "movements", gettext_lazy("MRR movements by month"),
        ["month", "MRR at start", "new", "expansion", "contraction", "churned", "reactivated", "MRR at end",
         "paying members at end", "revenue", "ARPU"],
        movement_rows, ["text", *["money"] * 7, "count", "money", "money"],
    )
    figures = [
        ("ARPU", _("ARPU"), report.arpu, "money"),
        ("ARPA", _("MRR per paying member"), report.arpa, "money"),
        ("monthly churn", _("Monthly churn (members)"), report.monthly_churn, "percent"),
        ("LTV", _("LTV"), report.ltv, "money"),
        ("trial-to-paid", _("Trial-to-paid rate"), report.trial_to_paid_rate, "percent"),
        ("dunning recovery", _("Dunning recovery rate"), report.dunning_recovery_rate, "percent"),
    ]
    summary = _shown("revenue", gettext_lazy("Figures"), ["figure", "value", "unit"],
                     [(key, value, unit) for key, _label, value, unit in figures], ["text", "probability", "text"],
                     display=[(label, format_value(None if v is None else float(v), unit), unit)
                              for _key, label, v, unit in figures])
    if _wants_csv(request):
        return _pick_table(request, {"movements": table.table, "revenue": summary.table})
    labels = [m.label for m in report.months]
    series = [
        (str(labels_map.label(name)), MOVEMENT_COLORS[name],
         [float(m.amount(name)) * (-1 if name in ("contraction", "churned") else 1) for m in report.months])
        for name in ("new", "reactivated", "expansion", "contraction", "churned")
    ]
    chart = charts.stacked_bar_chart(labels, series, title=_("MRR movements by month"))
    mrr_chart = charts.line_chart(labels, [float(m.amount("end")) for m in report.months], unit="money",
                                  title=str(gettext_lazy("MRR by month end")))
    cards = [{"label": label, "value": format_value(None if v is None else float(v), unit)}
             for _key, label, v, unit in figures]
    return _render(request, "analytics/revenue.html", _base_context(
        sel, "revenue", report=report, table=table, summary=summary, chart=chart, mrr_chart=mrr_chart, cards=cards,
        trial=report.trial_to_paid, dunning=report.dunning_recovery,
    ))
