"""Analytics API: client event ingestion, my recommendations and feedback, and staff data (one permission per capability, analytics/permissions.py).

Ingestion validates each event on its own and stores the good ones through analytics.ingest.events_bulk_ingest,
the same write path as the platform importer. Each event's idempotency key is "client:<user_id>:<event_id>"
(stored namespaced by source, e.g. "mobile:client:7:<uuid>"), so a retried batch — or the same batch posted twice
at once — stores every event exactly once: the unique index on Event.idempotency_key decides, not a prior SELECT.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, QuerySet
from django.http import Http404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import generics, permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from analytics import selectors
from analytics.api import serializers as s
from analytics.ingest.events import EventRow, events_bulk_ingest
from analytics.models import Campaign, JobRun, ModelVersion
from analytics.permissions import CanRunJobs, CanViewMemberProfiles, CanViewReports
from analytics.recommendations.selectors import recommendation_cards
from analytics.tracking import record_event
from config.api_errors import error_responses
from config.celery import app as celery_app
from members import pagecache
from members.catalogue import selectors as members_selectors


def _valid(serializer_class: type, data: Any, **context: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data, context=context)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


# --------------------------------------------------------------------------------------------------------------
# Event ingestion


def _event_errors(index: int, raw: dict[str, Any], errors: dict[str, Any]) -> list[dict[str, Any]]:
    event_id = raw.get("event_id") if isinstance(raw.get("event_id"), str) else ""
    rows = []
    for field, messages in errors.items():
        for message in messages if isinstance(messages, list) else [messages]:
            rows.append({"index": index, "event_id": event_id, "field": field, "message": str(message)})
    return rows


@extend_schema(
    tags=["events"], summary="Ingest a batch of behaviour events (up to 500)",
    description="Each event carries a client `event_id`; posting the same event again (a retry) counts it under "
    "`duplicates` and stores nothing. Invalid events are listed in `errors` (index, field, message) and the valid "
    "ones are stored all the same. Timestamps more than EVENT_MAX_CLOCK_SKEW_SECONDS ahead of the server clock or "
    "more than 30 days old are rejected. Only behavioural kinds are accepted from clients. Throttled per user "
    "(scope `events`).",
    request=s.EventBatchInput,
    responses={200: s.EventBatchOutput, **error_responses(400, 401)},
    examples=[
        OpenApiExample("Batch", request_only=True, value={"source": "mobile", "events": [
            {"event_id": "0b7c6c1e-4a3e-4f5e-9d55-1f0b1c8a9f10", "kind": "lesson_viewed", "object_type": "lesson",
             "object_id": "31", "occurred_at": "2026-11-29T05:59:30Z", "properties": {"seconds": 42}},
            {"event_id": "0b7c6c1e-4a3e-4f5e-9d55-1f0b1c8a9f11", "kind": "course_purchased",
             "occurred_at": "2026-11-29T05:59:31Z"},
        ]}),
        OpenApiExample("Result", response_only=True, value={
            "received": 2, "accepted": 1, "duplicates": 0, "rejected": 1,
            "errors": [{"index": 1, "event_id": "0b7c6c1e-4a3e-4f5e-9d55-1f0b1c8a9f11", "field": "kind",
                        "message": "\"course_purchased\" is not a valid choice."}]}),
    ],
)
class EventBatchView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    throttle_classes = [*api_settings.DEFAULT_THROTTLE_CLASSES, ScopedRateThrottle]
    throttle_scope = "events"

    def post(self, request: Request) -> Response:
        batch = _valid(s.EventBatchInput, request.data)
        now = timezone.now()
        rows: list[EventRow] = []
        errors: list[dict[str, Any]] = []
        for index, raw in enumerate(batch["events"]):
            event = s.EventInput(data=raw, context={"now": now})
            if not event.is_valid():
                errors.extend(_event_errors(index, raw, event.errors))
                continue
            data = event.validated_data
            rows.append(EventRow(
                member_id=request.user.pk, kind=data["kind"], object_type=data["object_type"],
                object_id=data["object_id"], occurred_at=data["occurred_at"], properties=data["properties"],
                idempotency_key=f"client:{request.user.pk}:{data['event_id']}",
            ))
        result = events_bulk_ingest(rows, source=batch["source"]) if rows else None
        rejected = len({error["index"] for error in errors})
        return Response(s.EventBatchOutput({
            "received": len(batch["events"]), "accepted": result.created if result else 0,
            "duplicates": result.duplicates if result else 0, "rejected": rejected, "errors": errors,
        }).data)


# --------------------------------------------------------------------------------------------------------------
# Recommendations

RECOMMENDATION_EXAMPLE = {
    "id": 301, "rank": 1, "score": 0.82,
    "course": {"id": 5, "slug": "dashboards", "title": "Dashboards that get read", "price": "149.00",
               "currency": "CNY"},
    "reason": "similar_to_purchase", "reason_text": "Similar to “SQL for analysts”, which you have",
    "reason_course": "sql-for-analysts", "source": "model",
}
FEEDBACK_KINDS = {"impression": "recommendation_impression", "click": "recommendation_click",
                  "dismiss": "recommendation_dismiss"}


@extend_schema(
    tags=["me"], summary="My recommendations (current run, owned courses excluded; popular courses when there are none)",
    parameters=[OpenApiParameter("limit", OpenApiTypes.INT, description="At most this many (1–50, default 10).")],
    responses={200: s.RecommendationOutput(many=True), **error_responses(401)},
    examples=[OpenApiExample("Recommendation", value=[RECOMMENDATION_EXAMPLE], response_only=True)],
)
class RecommendationListView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def get(self, request: Request) -> Response:
        # From the page cache per member (members.pagecache): a new run, feedback or purchase bumps its version.
        return pagecache.cached_api_data(request, lambda: self._cards(request))

    def _cards(self, request: Request) -> Response:
        try:
            limit = min(50, max(1, int(request.query_params.get("limit", 10))))
        except ValueError:
            limit = 10
        cards = recommendation_cards(member=request.user, limit=limit)
        return Response(s.RecommendationOutput([{
            "id": card.recommendation.set_id if card.recommendation else None, "rank": card.rank,
            "score": card.recommendation.score if card.recommendation else None, "course": card.course,
            "reason": card.recommendation.reason if card.recommendation else "popular", "reason_text": card.reason,
            "reason_course": card.recommendation.reason_course.slug
            if card.recommendation and card.recommendation.reason_course else None,
            "source": card.source,
        } for card in cards], many=True).data)


@extend_schema(
    tags=["me"], summary="Record feedback on a recommendation (impression, click, dismiss)",
    request=s.RecommendationFeedbackInput,
    responses={201: s.RecommendationFeedbackOutput, **error_responses(400, 401, 404)},
    examples=[OpenApiExample("Click", value={"action": "click", "course": 5, "rank": 1}, request_only=True),
              OpenApiExample("Recorded", value={"recorded": "recommendation_click"}, response_only=True)],
)
class RecommendationFeedbackView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def post(self, request: Request) -> Response:
        data = _valid(s.RecommendationFeedbackInput, request.data)
        course = members_selectors.course_list().filter(pk=data["course"]).first()
        if course is None:
            raise Http404("No such course.")
        kind = FEEDBACK_KINDS[data["action"]]
        record_event(member=request.user, kind=kind, obj=course,
                     properties={"rank": data.get("rank"), "source": "api"})
        return Response(s.RecommendationFeedbackOutput({"recorded": kind}).data, status=status.HTTP_201_CREATED)


# --------------------------------------------------------------------------------------------------------------
# Staff

# One permission per staff capability (analytics/permissions.py), not is_staff: a staff account opens the admin,
# nothing more, until it is given the capability.
STAFF = [CanViewReports]

MEMBER_EXAMPLE = {
    "id": 42, "email": "lin@example.com", "display_name": "Lin", "date_joined": "2025-12-01T00:00:00Z",
    "tier": "plus", "engagement_score": 71.5, "engagement_as_of": "2026-11-29T02:00:00Z", "segment": "committed",
    "probability": 0.34, "churn_risk": 0.66, "propensity_as_of": "2026-11-29T02:00:00Z",
    "top_reasons": [{"feature": "days_since_last_lesson", "code": "days_since_last_lesson", "effect": "-",
                     "weight": -0.41, "params": {"value": 21.0, "sub_live": 1.0, "has_purchased": 1.0,
                                                 "lessons_total": 6.0},
                     "text": "no lesson in 21 days"}],
}


@extend_schema(
    tags=["staff"], summary="Members with latest engagement, segment, propensity and reasons",
    parameters=[s.StaffMemberQueryInput],
    responses={200: s.StaffMemberOutput(many=True), **error_responses(400, 401, 403)},
    examples=[OpenApiExample("Member", value=MEMBER_EXAMPLE, response_only=True)],
)
class StaffMemberListView(generics.ListAPIView):
    permission_classes = [CanViewMemberProfiles]
    serializer_class = s.StaffMemberOutput
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[Any]:
        query = _valid(s.StaffMemberQueryInput, self.request.query_params)
        qs = selectors.members_with_scores_filtered(
            segment=query.get("segment", ""), tier=query.get("tier", ""),
            min_probability=query.get("min_probability"), max_probability=query.get("max_probability"),
        )
        return qs.order_by(query["ordering"], "pk")


@extend_schema(
    tags=["staff"], summary="Report figures for a trailing window (active, paying, MRR, renewal, churn, …)",
    parameters=[OpenApiParameter("days", OpenApiTypes.INT, description="Window length ending now (default 30)."),
                OpenApiParameter("tier", OpenApiTypes.INT, description="Tier id filter."),
                OpenApiParameter("segment", str, description="Segment label filter.")],
    responses={200: s.OverviewOutput, **error_responses(400, 401, 403)},
    examples=[OpenApiExample("Overview", response_only=True, value={
        "window": {"start": "2026-10-30T00:00:00Z", "end": "2026-11-29T00:00:00Z"},
        "previous": {"start": "2026-09-30T00:00:00Z", "end": "2026-10-30T00:00:00Z"},
        "figures": [{"key": "mrr", "label": "MRR", "unit": "money", "value": 48210.0, "previous": 46900.0,
                     "change": 1310.0, "detail": "", "trend": [{"label": "2026-10", "value": 46900.0}]}]})],
)
class StaffOverviewView(APIView):
    permission_classes = STAFF

    def get(self, request: Request) -> Response:
        from analytics.reports.common import Filters, Window, reporting_today, start_of_day
        from analytics.reports.metrics import overview

        query = _valid(s.OverviewQueryInput, request.query_params)
        # Days are the reporting zone's, as on the staff pages (docs/METRICS.md, "Time zone").
        end = start_of_day(reporting_today(timezone.now()) + timedelta(days=1))
        window = Window(end - timedelta(days=query["days"]), end)
        report = overview(window=window, filters=Filters(tier_id=query.get("tier"), segment=query.get("segment", "")))
        return Response(s.OverviewOutput({
            "window": {"start": report.window.start, "end": report.window.end},
            "previous": {"start": report.previous.start, "end": report.previous.end},
            "figures": [{"key": f.key, "label": str(f.label), "unit": f.unit, "value": f.value, "previous": f.previous,
                         "change": f.change, "detail": str(f.detail),
                         "trend": [{"label": p.label, "value": p.value} for p in f.trend]} for f in report.figures],
        }).data)


CAMPAIGN_EXAMPLE = {
    "id": 3, "name": "Win back at-risk", "status": "active", "audience": "at_risk", "segment": "", "tier": None,
    "min_churn_risk": 0.6, "max_churn_risk": None, "discount_type": "percent", "percent_off": "20.00",
    "amount_off": None, "holdout_share": "0.200", "starts_at": "2026-11-01T00:00:00Z", "ends_at": None,
    "created_at": "2026-10-30T00:00:00Z", "assigned": 412,
}


@extend_schema(tags=["staff"], summary="Campaigns", responses={200: s.CampaignOutput(many=True),
                                                              **error_responses(401, 403)},
               examples=[OpenApiExample("Campaign", value=CAMPAIGN_EXAMPLE, response_only=True)])
class StaffCampaignListView(generics.ListAPIView):
    permission_classes = STAFF
    serializer_class = s.CampaignOutput
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[Campaign]:
        return Campaign.objects.select_related("tier").annotate(assigned=Count("assignments")).order_by("-created_at")


@extend_schema(
    tags=["staff"], summary="A campaign with its treatment-vs-holdout results",
    responses={200: s.CampaignDetailOutput, **error_responses(401, 403, 404)},
    examples=[OpenApiExample("Results", response_only=True, value={**CAMPAIGN_EXAMPLE, "results": {
        "treatment": {"n": 330, "conversions": 41, "rate": 0.124, "revenue": "6120.00", "revenue_per_member": "18.55"},
        "control": {"n": 82, "conversions": 6, "rate": 0.073, "revenue": "890.00", "revenue_per_member": "10.85"},
        "uplift": 0.051, "ci_low": -0.02, "ci_high": 0.11, "ci_method": "Newcombe hybrid score (Wilson), 95%",
        "significant": False, "coupons_issued": 330, "coupons_redeemed": 38, "discount_given": "1140.00",
        "incremental_revenue": "1401.50"}})],
)
class StaffCampaignDetailView(APIView):
    permission_classes = STAFF

    def get(self, request: Request, pk: int) -> Response:
        from analytics.outreach.campaigns import campaign_results

        try:
            campaign = StaffCampaignListView().get_queryset().get(pk=pk)
        except Campaign.DoesNotExist:
            raise Http404 from None
        result = campaign_results(campaign)
        data = s.CampaignOutput(campaign).data

        def group(g: Any) -> dict[str, Any]:
            return {"n": g.n, "conversions": g.conversions, "rate": g.rate, "revenue": g.revenue,
                    "revenue_per_member": g.revenue_per_member}

        data["results"] = s.CampaignResultOutput({
            "treatment": group(result.treatment), "control": group(result.control), "uplift": result.uplift,
            "ci_low": result.ci_low, "ci_high": result.ci_high, "ci_method": result.ci_method,
            "significant": result.significant, "coupons_issued": result.coupons_issued,
            "coupons_redeemed": result.coupons_redeemed, "discount_given": result.discount_given,
            "incremental_revenue": result.incremental_revenue,
        }).data
        return Response(data)


@extend_schema(tags=["staff"], summary="Model versions, newest first",
               parameters=[s.ModelVersionQueryInput],
               responses={200: s.ModelVersionOutput(many=True), **error_responses(401, 403)},
               examples=[OpenApiExample("Model", response_only=True, value={
                   "id": 9, "kind": "repurchase", "created_at": "2026-11-23T03:00:00Z",
                   "as_of": "2026-11-23T00:00:00Z", "horizon_days": 90, "algorithm": "HistGradientBoosting",
                   "features": ["recency_days"], "metrics": {"roc_auc": 0.78}, "baselines": {"recency": 0.69},
                   "is_serving": True, "notes": ""})])
class StaffModelVersionListView(generics.ListAPIView):
    permission_classes = STAFF
    serializer_class = s.ModelVersionOutput
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[ModelVersion]:
        query = _valid(s.ModelVersionQueryInput, self.request.query_params)
        qs = ModelVersion.objects.order_by("-created_at")
        return qs.filter(kind=query["kind"]) if query.get("kind") else qs


@extend_schema(tags=["staff"], summary="Job runs, newest first",
               parameters=[s.JobRunQueryInput],
               responses={200: s.JobRunOutput(many=True), **error_responses(401, 403)},
               examples=[OpenApiExample("Run", response_only=True, value={
                   "id": 77, "job": "nightly-analytics", "status": "succeeded", "as_of": "2026-11-29T02:00:00Z",
                   "params": {}, "started_at": "2026-11-29T02:00:01Z", "finished_at": "2026-11-29T02:04:12Z",
                   "duration_seconds": 251.0, "rows": 1500, "error": "", "message": ""})])
class StaffJobRunListView(generics.ListAPIView):
    permission_classes = STAFF
    serializer_class = s.JobRunOutput
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[JobRun]:
        query = _valid(s.JobRunQueryInput, self.request.query_params)
        qs = JobRun.objects.order_by("-started_at")
        return qs.filter(**{field: query[field] for field in ("job", "status") if query.get(field)})


@extend_schema(
    tags=["staff"], summary="Trigger a scheduled job now",
    description="Enqueues the beat-schedule entry's task on its usual queue; the job writes a JobRun as usual.",
    request=s.JobTriggerInput, responses={202: s.JobTriggerOutput, **error_responses(400, 401, 403)},
    examples=[OpenApiExample("Nightly", value={"job": "nightly-analytics"}, request_only=True),
              OpenApiExample("Queued", response_only=True, value={
                  "job": "nightly-analytics", "task": "analytics.scoring.tasks.run_nightly_pipeline",
                  "task_id": "5f1c2d9e-2b1a-4c3e-8f9a-0d1e2f3a4b5c"})],
)
class StaffJobTriggerView(APIView):
    permission_classes = [CanRunJobs]

    def post(self, request: Request) -> Response:
        data = _valid(s.JobTriggerInput, request.data)
        entry = celery_app.conf.beat_schedule[data["job"]]
        options = {key: value for key, value in entry.get("options", {}).items() if key != "expires"}
        result = celery_app.send_task(entry["task"], **options)
        return Response(s.JobTriggerOutput({"job": data["job"], "task": entry["task"], "task_id": result.id}).data,
                        status=status.HTTP_202_ACCEPTED)


def _filters(query: dict[str, Any]) -> Any:
    from analytics.reports.common import Filters

    return Filters(tier_id=query.get("tier"), segment=query.get("segment", ""))


@extend_schema(
    tags=["staff"], summary="Churn-risk distribution of the serving model's latest scoring",
    parameters=[OpenApiParameter("tier", OpenApiTypes.INT), OpenApiParameter("segment", str)],
    responses={200: s.RiskDistributionOutput, **error_responses(400, 401, 403)},
    examples=[OpenApiExample("Risk", response_only=True, value={
        "model": "repurchase v9 (hgb)", "as_of": "2026-11-29T02:00:00Z", "scored": 1500,
        "bins": [{"label": "0.0–0.1", "count": 80}, {"label": "0.1–0.2", "count": 140}]})],
)
class StaffRiskView(APIView):
    permission_classes = STAFF

    def get(self, request: Request) -> Response:
        from analytics.reports.churn import risk_distribution

        query = _valid(s.ReportFilterInput, request.query_params)
        report = risk_distribution(filters=_filters(query))
        return Response(s.RiskDistributionOutput({
            "model": report.model, "as_of": report.as_of, "scored": report.scored,
            "bins": [{"label": b.label, "count": b.count} for b in report.bins],
        }).data)


@extend_schema(
    tags=["staff"], summary="Cohort tables: membership retention, repurchase, revenue retention",
    parameters=[OpenApiParameter("months", OpenApiTypes.INT, description="Cohort months (1–36, default 12)."),
                OpenApiParameter("tier", OpenApiTypes.INT), OpenApiParameter("segment", str)],
    responses={200: s.CohortReportOutput, **error_responses(400, 401, 403)},
    examples=[OpenApiExample("Cohorts", response_only=True, value={
        "as_of": "2026-11-29T00:00:00Z", "tables": [{
            "key": "subscription", "title": "Membership retention", "basis": "join month", "offsets": [0, 1, 2],
            "rows": [{"cohort": "2026-09", "size": 120, "values": [0.41, 0.33, None]}]}]})],
)
class StaffCohortsView(APIView):
    permission_classes = STAFF

    def get(self, request: Request) -> Response:
        from analytics.reports.cohorts import cohort_report

        query = _valid(s.ReportFilterInput, request.query_params)
        report = cohort_report(as_of=timezone.now(), months=query["months"], filters=_filters(query))
        return Response(s.CohortReportOutput({
            "as_of": report.as_of,
            "tables": [{"key": t.key, "title": str(t.title), "basis": str(t.basis), "offsets": list(t.offsets),
                        "rows": [{"cohort": r.cohort, "size": r.size, "values": list(r.values)} for r in t.rows]}
                       for t in report.tables],
        }).data)
