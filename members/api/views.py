"""Members API: the catalogue (anonymous), and everything a learner does to their own account under /me/.

Views are thin: validate input with the endpoint's input serializer, call the same service or selector the site
uses, render with the output serializer. Domain errors from members.services propagate to
config.api_errors.api_exception_handler, which turns them into the common error body.
"""
from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.urls import reverse
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from config.api_errors import error_responses
from config.api_throttles import LoginRateThrottle
from members import pagecache
from members.accounts import services as accounts_services
from members.api import auth
from members.api import serializers as s
from members.catalogue import selectors as catalogue_selectors
from members.commerce import provider_services
from members.commerce import selectors as commerce_selectors
from members.commerce import services as commerce_services
from members.learning import progress as learning_progress
from members.models import Course, Lesson, MembershipTier, Order, Subscription, User
from members.subscriptions import selectors as subscriptions_selectors
from members.subscriptions import services as subscriptions_services

# --------------------------------------------------------------------------------------------------------------
# Catalogue


class CourseFilter(django_filters.FilterSet):
    topic = django_filters.CharFilter(field_name="topic", lookup_expr="iexact")
    level = django_filters.ChoiceFilter(field_name="level", choices=Course.Level.choices)
    min_price = django_filters.NumberFilter(field_name="price", lookup_expr="gte")
    max_price = django_filters.NumberFilter(field_name="price", lookup_expr="lte")

    class Meta:
        model = Course
        fields = ["topic", "level", "min_price", "max_price"]


COURSE_EXAMPLE = {
    "id": 3, "slug": "sql-for-analysts", "title": "SQL for analysts", "title_zh": "", "summary": "Joins to windows.",
    "instructor": "Mei Lin", "topic": "data", "tags": ["sql"], "level": "beginner", "price": "199.00",
    "currency": "CNY", "published_at": "2026-01-10T08:00:00Z", "lesson_count": 12,
}


@extend_schema(
    tags=["catalogue"],
    summary="List published courses",
    description="Filter by topic, level and price range; `search` matches title, summary and instructor; "
    "`ordering` by `price`, `published_at` or `title` (prefix `-` for descending).",
    responses={200: s.CourseListOutput(many=True), **error_responses(400)},
    examples=[OpenApiExample("A page of courses", value=COURSE_EXAMPLE, response_only=True)],
)
class CourseListView(generics.ListAPIView):
    permission_classes = [permissions.AllowAny]
    serializer_class = s.CourseListOutput
    filterset_class = CourseFilter
    search_fields = ["title", "title_zh", "summary", "instructor"]
    ordering_fields = ["price", "published_at", "title"]
    ordering = ["title"]

    def get_queryset(self) -> QuerySet[Course]:
        return catalogue_selectors.with_lesson_count(catalogue_selectors.course_list())

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Anonymous lists come from the page cache (members.pagecache): the same for every visitor, keyed by the
        query string, the language and the pages version, which course and enrollment writes bump."""
        if request.user.is_authenticated:
            return super().list(request, *args, **kwargs)
        return pagecache.cached_api_data(request, lambda: super(CourseListView, self).list(request, *args, **kwargs))


@extend_schema(
    tags=["catalogue"],
    summary="One published course with its lessons",
    responses={200: s.CourseDetailOutput, **error_responses(404)},
    examples=[OpenApiExample("Course with lessons", response_only=True, value={
        **{k: v for k, v in COURSE_EXAMPLE.items() if k != "lesson_count"}, "description": "…", "audience": "…",
        "lessons": [{"id": 31, "position": 1, "title": "SELECT", "duration_minutes": 12, "is_preview": True}],
    })],
)
class CourseDetailView(APIView):
    permission_classes = [permissions.AllowAny]

    def get(self, request: Request, slug: str) -> Response:
        course = _published_course(slug)
        return Response(s.CourseDetailOutput(course).data)


def _published_course(slug: str) -> Course:
    try:
        course = catalogue_selectors.course_with_lessons(slug=slug)
    except Course.DoesNotExist:
        raise Http404 from None
    if not course.is_published or course.is_generic:
        raise Http404
    return course


@extend_schema(
    tags=["catalogue"],
    summary="Membership tiers with their benefits",
    responses={200: s.TierOutput(many=True), **error_responses()},
    examples=[OpenApiExample("Tiers", response_only=True, value=[{
        "id": 1, "slug": "plus", "name": "Plus", "description": "All courses.", "monthly_price": "49.00",
        "yearly_price": "490.00", "currency": "CNY", "trial_days": 7,
        "benefits": [{"kind": "all_courses", "value": None, "description": "Every course"}],
    }])],
)
class TierListView(generics.ListAPIView):
    permission_classes = [permissions.AllowAny]
    serializer_class = s.TierOutput
    pagination_class = None
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[MembershipTier]:
        return catalogue_selectors.tier_list()


# --------------------------------------------------------------------------------------------------------------
# Me: profile and tokens

PROFILE_EXAMPLE = {
    "id": 7, "email": "alice@example.com", "display_name": "Alice", "preferred_language": "en", "time_zone": "UTC",
    "marketing_opt_in": True, "country": "CN", "date_joined": "2026-01-02T10:00:00Z", "is_staff": False,
}


class ProfileView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(tags=["me"], summary="My profile", responses={200: s.ProfileOutput, **error_responses(401)},
                   examples=[OpenApiExample("Profile", value=PROFILE_EXAMPLE, response_only=True)])
    def get(self, request: Request) -> Response:
        return Response(s.ProfileOutput(request.user).data)

    @extend_schema(
        tags=["me"], summary="Update my profile", request=s.ProfileUpdateInput,
        responses={200: s.ProfileOutput, **error_responses(400, 401)},
        examples=[OpenApiExample("Switch language", value={"preferred_language": "zh-hans"}, request_only=True),
                  OpenApiExample("Profile", value=PROFILE_EXAMPLE, response_only=True)],
    )
    def patch(self, request: Request) -> Response:
        data = _valid(s.ProfileUpdateInput, request, partial=True)
        user = request.user
        # PATCH: unsent fields keep their current value; the service takes the whole editable set, like the form.
        user = accounts_services.member_update_profile(
            member=user, display_name=data.get("display_name", user.display_name),
            preferred_language=data.get("preferred_language", user.preferred_language),
            time_zone=data.get("time_zone", user.time_zone),
            marketing_opt_in=data.get("marketing_opt_in", user.marketing_opt_in),
        )
        return Response(s.ProfileOutput(user).data)


class TokenView(APIView):
    """Create or revoke my API token. Apps and data tools send it as `Authorization: Token <key>`."""

    permission_classes = [permissions.AllowAny]
    throttle_classes = [*api_settings.DEFAULT_THROTTLE_CLASSES, LoginRateThrottle]

    @extend_schema(
        tags=["auth"], summary="Create (or return) my API token",
        description="A logged-in session gets its token directly; otherwise send email and password. When a "
        "password is sent it is always re-checked.",
        request=s.TokenCreateInput, responses={201: s.TokenOutput, **error_responses(400, 401)},
        # Throttled per IP at the `login` rate as well as the general ones.
        examples=[
            OpenApiExample("With password", value={"email": "alice@example.com", "password": "…"}, request_only=True),
            OpenApiExample("Token", value={"token": "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b",
                                           "created": "2026-11-29T06:00:00Z"}, response_only=True),
        ],
    )
    def post(self, request: Request) -> Response:
        data = _valid(s.TokenCreateInput, request)
        user = auth.user_for_token_request(
            current=request.user, email=data.get("email", ""), password=data.get("password"), request=request
        )
        token = auth.api_token_issue(user=user)
        return Response(s.TokenOutput({"token": token.key, "created": token.created}).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(tags=["auth"], summary="Revoke my API token", request=None,
                   responses={204: OpenApiResponse(description="Revoked (or there was none)."), **error_responses(401)})
    def delete(self, request: Request) -> Response:
        if not request.user.is_authenticated:
            from rest_framework.exceptions import NotAuthenticated

            raise NotAuthenticated
        auth.api_token_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --------------------------------------------------------------------------------------------------------------
# Me: membership

SUBSCRIPTION_EXAMPLE = {
    "id": 12, "tier": {"id": 1, "slug": "plus", "name": "Plus", "description": "", "monthly_price": "49.00",
                       "yearly_price": "490.00", "currency": "CNY", "trial_days": 0, "benefits": []},
    "billing_period": "month", "status": "active", "is_active": True, "started_at": "2026-10-01T00:00:00Z",
    "current_period_start": "2026-11-01T00:00:00Z", "current_period_end": "2026-12-01T00:00:00Z",
    "trial_end": None, "cancel_at_period_end": False, "canceled_at": None, "cancellation_reason": "",
    "grace_until": None, "scheduled_tier": None, "scheduled_billing_period": "",
}


IDEMPOTENCY_KEY = OpenApiParameter(
    name="Idempotency-Key", location=OpenApiParameter.HEADER, required=False, type=str,
    description="Any unique string (a UUID) per intended operation. A retry with the same key returns the first "
    "result without charging again; the same key with a different body is refused with 409 `idempotency_conflict`; "
    "while the first request is still running a retry gets 409 `request_in_progress`.",
)


def _idempotency_key(request: Request) -> str:
    return request.headers.get("Idempotency-Key", "")


def _live_subscription(user: User) -> Subscription:
    sub = catalogue_selectors.live_subscription(member=user)
    if sub is None:
        raise Http404("You have no live membership.")
    return sub


def _subscription_response(sub: Subscription, http_status: int = status.HTTP_200_OK) -> Response:
    fresh = catalogue_selectors.live_subscription(member=sub.member) or sub
    return Response(s.SubscriptionOutput(fresh).data, status=http_status)


class MembershipView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(tags=["me"], summary="My current membership (null when none is live)",
                   responses={200: s.MembershipOutput, **error_responses(401)},
                   examples=[OpenApiExample("Live", value={"subscription": SUBSCRIPTION_EXAMPLE}, response_only=True),
                             OpenApiExample("None", value={"subscription": None}, response_only=True)])
    def get(self, request: Request) -> Response:
        return Response(s.MembershipOutput({"subscription": catalogue_selectors.live_subscription(member=request.user)}).data)

    @extend_schema(
        tags=["me"], summary="Subscribe to a tier", request=s.SubscribeInput,
        description="Starts a trial when the tier has one and the member never had one; otherwise charges the "
        "first period. 409 `already_subscribed` when a membership is live; 400 `payment_failed` when declined.",
        parameters=[IDEMPOTENCY_KEY],
        responses={201: s.SubscriptionOutput, **error_responses(400, 401, 404, 409)},
        examples=[OpenApiExample("Monthly", value={"tier": "plus", "period": "month"}, request_only=True),
                  OpenApiExample("Subscribed", value=SUBSCRIPTION_EXAMPLE, response_only=True)],
    )
    def post(self, request: Request) -> Response:
        data = _valid(s.SubscribeInput, request)
        tier = _get_or_404(catalogue_selectors.tier_list(), slug=data["tier"])
        sub = subscriptions_services.subscription_start(
            member=request.user, tier=tier, period=data["period"], coupon_code=data["coupon_code"],
            payment_token=data["payment_token"] or None, use_trial=data["use_trial"],
            idempotency_key=_idempotency_key(request),
        )
        return _subscription_response(sub, status.HTTP_201_CREATED)


PLAN_CHANGE_EXAMPLE = {"subscription": SUBSCRIPTION_EXAMPLE, "order": None, "scheduled": True}


def _plan_change_response(change: subscriptions_services.PlanChange) -> Response:
    fresh = catalogue_selectors.live_subscription(member=change.subscription.member) or change.subscription
    return Response(s.PlanChangeOutput({"subscription": fresh, "order": change.order,
                                        "scheduled": change.scheduled}).data)


@extend_schema(
    tags=["me"], summary="Switch my billing period (monthly -> yearly now, prorated; yearly -> monthly at period end)",
    request=s.SwitchPeriodInput, parameters=[IDEMPOTENCY_KEY],
    description="Monthly -> yearly starts a yearly period now and charges the yearly price less the unused part of "
    "the month (`order`). Yearly -> monthly is scheduled for the end of the paid year (`scheduled`: true, nothing "
    "charged). Sending the current period again undoes a scheduled switch.",
    responses={200: s.PlanChangeOutput, **error_responses(400, 401, 404, 409)},
    examples=[OpenApiExample("Yearly", value={"period": "year"}, request_only=True),
              OpenApiExample("Scheduled", value=PLAN_CHANGE_EXAMPLE, response_only=True)],
)
class MembershipSwitchPeriodView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def post(self, request: Request) -> Response:
        data = _valid(s.SwitchPeriodInput, request)
        change = subscriptions_services.subscription_switch_period(
            subscription=_live_subscription(request.user), period=data["period"],
            payment_token=data.get("payment_token") or None, idempotency_key=_idempotency_key(request),
        )
        return _plan_change_response(change)


@extend_schema(
    tags=["me"], summary="Change my tier (upgrade now, prorated; downgrade at period end)",
    request=s.ChangeTierInput, parameters=[IDEMPOTENCY_KEY],
    description="Upgrade: charged now for the rest of the period at the new price, less the unused part of the "
    "current one (`order`). Downgrade: scheduled for the period end (`scheduled`: true). Sending the current tier "
    "undoes a scheduled downgrade.",
    responses={200: s.PlanChangeOutput, **error_responses(400, 401, 404, 409)},
    examples=[OpenApiExample("Upgrade", value={"tier": "pro"}, request_only=True),
              OpenApiExample("Scheduled", value=PLAN_CHANGE_EXAMPLE, response_only=True)],
)
class MembershipChangeTierView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def post(self, request: Request) -> Response:
        data = _valid(s.ChangeTierInput, request)
        tier = _get_or_404(catalogue_selectors.tier_list(), slug=data["tier"])
        change = subscriptions_services.subscription_change_tier(
            subscription=_live_subscription(request.user), tier=tier, payment_token=data["payment_token"] or None,
            idempotency_key=_idempotency_key(request),
        )
        return _plan_change_response(change)


@extend_schema(
    tags=["me"], summary="Renew now: pay for the next period", request=s.RenewInput, parameters=[IDEMPOTENCY_KEY],
    description="Charges the next period now. 409 `already_renewed` when the next period is already paid; "
    "400 `payment_failed` when declined (an early renewal that is declined changes nothing else).",
    responses={201: s.OrderOutput, **error_responses(400, 401, 404, 409)},
    examples=[OpenApiExample("Renew", value={"payment_token": ""}, request_only=True)],
)
class MembershipRenewView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def post(self, request: Request) -> Response:
        data = _valid(s.RenewInput, request)
        order = subscriptions_services.subscription_renew(
            subscription=_live_subscription(request.user), payment_token=data["payment_token"] or None,
            idempotency_key=_idempotency_key(request),
        )
        return Response(s.OrderOutput(order).data, status=status.HTTP_201_CREATED)


@extend_schema(
    tags=["me"], summary="Cancel my membership at period end, with a reason", request=s.CancelInput,
    responses={200: s.SubscriptionOutput, **error_responses(400, 401, 404)},
    examples=[OpenApiExample("Too expensive", value={"reason": "too_expensive", "note": ""}, request_only=True),
              OpenApiExample("Cancelled", response_only=True, value={
                  **SUBSCRIPTION_EXAMPLE, "cancel_at_period_end": True, "canceled_at": "2026-11-29T06:00:00Z",
                  "cancellation_reason": "too_expensive"})],
)
class MembershipCancelView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def post(self, request: Request) -> Response:
        data = _valid(s.CancelInput, request)
        sub = subscriptions_services.subscription_cancel(
            subscription=_live_subscription(request.user), reason=data["reason"], note=data["note"]
        )
        return _subscription_response(sub)


@extend_schema(
    tags=["me"], summary="Undo a pending cancellation", request=None,
    responses={200: s.SubscriptionOutput, **error_responses(400, 401, 404)},
    examples=[OpenApiExample("Reactivated", value=SUBSCRIPTION_EXAMPLE, response_only=True)],
)
class MembershipReactivateView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def post(self, request: Request) -> Response:
        sub = subscriptions_services.subscription_reactivate(subscription=_live_subscription(request.user))
        return _subscription_response(sub)


# --------------------------------------------------------------------------------------------------------------
# Me: orders, coupons, purchases, quotes

ORDER_EXAMPLE = {
    "id": 501, "kind": "course", "item_title": "SQL for analysts", "course": "sql-for-analysts", "tier": None,
    "billing_period": "", "is_renewal": False, "list_price": "199.00", "discount": "39.80", "amount_paid": "159.20",
    "currency": "CNY", "coupon": "SAVE20", "status": "paid", "created_at": "2026-11-29T06:00:00Z",
    "paid_at": "2026-11-29T06:00:00Z", "refunded_at": None, "failure_reason": "",
}


@extend_schema(tags=["me"], summary="My orders, newest first",
               responses={200: s.OrderOutput(many=True), **error_responses(401)},
               examples=[OpenApiExample("Order", value=ORDER_EXAMPLE, response_only=True)])
class OrderListView(generics.ListAPIView):
    permission_classes = [permissions.IsAuthenticated]
    serializer_class = s.OrderOutput
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[Order]:
        return commerce_selectors.member_orders(member=self.request.user)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """From the page cache per member (members.pagecache): order writes bump its version."""
        return pagecache.cached_api_data(request, lambda: super(OrderListView, self).list(request, *args, **kwargs))


@extend_schema(tags=["me"], summary="One of my orders", responses={200: s.OrderOutput, **error_responses(401, 404)},
               examples=[OpenApiExample("Order", value=ORDER_EXAMPLE, response_only=True)])
class OrderDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def get(self, request: Request, pk: int) -> Response:
        return Response(s.OrderOutput(_get_or_404(commerce_selectors.member_orders(member=request.user), pk=pk)).data)


@extend_schema(tags=["me"], summary="My usable coupons",
               responses={200: s.CouponOutput(many=True), **error_responses(401)},
               examples=[OpenApiExample("Coupon", response_only=True, value={
                   "code": "CAM-1A2B3C", "description": "We miss you", "discount_type": "percent",
                   "percent_off": "20.00", "amount_off": None, "currency": "CNY", "applies_to": "all",
                   "value_label": "20%", "valid_from": "2026-11-20T00:00:00Z", "valid_until": "2026-12-04T00:00:00Z",
                   "source": "campaign"})])
class CouponListView(generics.ListAPIView):
    permission_classes = [permissions.IsAuthenticated]
    serializer_class = s.CouponOutput
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[Any]:
        return commerce_selectors.member_coupons(member=self.request.user)


@extend_schema(
    tags=["me"], summary="Buy a course", request=s.PurchaseInput,
    description="Charges the given payment token (or the default payment method). With `provider` (alipay, "
    "wechatpay, stripe; configured ones only) nothing is charged now: 202 with the pending order and the "
    "provider's checkout to open; the provider's notification pays the order once, and `checkout.return_url` "
    "shows its state. 409 `already_owned` when the "
    "member owns it, 409 `included_in_membership` when their membership includes it (nothing to pay); 400 with a "
    "coupon code (`coupon_expired`, …) or `payment_failed` otherwise.",
    responses={201: s.OrderOutput, 202: s.ProviderPurchaseOutput, **error_responses(400, 401, 404, 409)},
    parameters=[IDEMPOTENCY_KEY],
    examples=[OpenApiExample("With coupon", value={"coupon_code": "SAVE20", "payment_token": ""}, request_only=True),
              OpenApiExample("Paid", value=ORDER_EXAMPLE, response_only=True)],
)
class CoursePurchaseView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def post(self, request: Request, slug: str) -> Response:
        data = _valid(s.PurchaseInput, request)
        course = _published_course(slug)
        if data["provider"]:
            def return_url(pk: int) -> str:
                return request.build_absolute_uri(reverse("payments:return", kwargs={"pk": pk}))

            order, checkout = provider_services.course_checkout_start(
                member=request.user, course=course, provider=data["provider"], coupon_code=data["coupon_code"],
                return_url=return_url, idempotency_key=_idempotency_key(request))
            if checkout is not None:
                return Response(s.ProviderPurchaseOutput({"order": order, "checkout": {
                    "kind": checkout.kind, "url": checkout.url, "return_url": return_url(order.pk)}}).data,
                    status=status.HTTP_202_ACCEPTED)
            return Response(s.OrderOutput(order).data, status=status.HTTP_201_CREATED)
        order = commerce_services.course_purchase(
            member=request.user, course=course, coupon_code=data["coupon_code"],
            payment_token=data["payment_token"] or None, idempotency_key=_idempotency_key(request),
        )
        return Response(s.OrderOutput(order).data, status=status.HTTP_201_CREATED)


@extend_schema(
    tags=["me"], summary="Price a course or tier for me (member discount, then coupon)", request=s.QuoteInput,
    responses={200: s.QuoteOutput, **error_responses(400, 401, 404)},
    examples=[OpenApiExample("Course with coupon", value={"course": "sql-for-analysts", "coupon_code": "SAVE20"},
                             request_only=True),
              OpenApiExample("Quote", response_only=True, value={
                  "list_price": "199.00", "member_discount": "0.00", "coupon_discount": "39.80",
                  "discount": "39.80", "total": "159.20", "currency": "CNY", "coupon_code": "SAVE20"})],
)
class QuoteView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def post(self, request: Request) -> Response:
        data = _valid(s.QuoteInput, request)
        course = _published_course(data["course"]) if data.get("course") else None
        tier = _get_or_404(catalogue_selectors.tier_list(), slug=data["tier"]) if data.get("tier") else None
        quote = commerce_services.price_quote(member=request.user, course=course, tier=tier, period=data["period"],
                                     coupon_code=data["coupon_code"])
        return Response(s.QuoteOutput({
            "list_price": quote.list_price, "member_discount": quote.member_discount,
            "coupon_discount": quote.coupon_discount, "discount": quote.discount, "total": quote.total,
            "currency": quote.currency, "coupon_code": quote.coupon.code if quote.coupon else "",
        }).data)


# --------------------------------------------------------------------------------------------------------------
# Me: learning


@extend_schema(tags=["me"], summary="My enrollments with progress",
               responses={200: s.EnrollmentOutput(many=True), **error_responses(401)},
               examples=[OpenApiExample("Enrollment", response_only=True, value={
                   "id": 40, "course": {"id": 3, "slug": "sql-for-analysts", "title": "SQL for analysts"},
                   "source": "purchase", "enrolled_at": "2026-11-01T00:00:00Z", "completed_at": None,
                   "last_activity_at": "2026-11-28T20:00:00Z", "lessons_total": 12, "lessons_done": 5,
                   "progress_percent": 42})])
class EnrollmentListView(generics.ListAPIView):
    permission_classes = [permissions.IsAuthenticated]
    serializer_class = s.EnrollmentOutput
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[Any]:
        member = self.request.user
        # Counted in the same query as the page (two correlated counts), so the list costs one query, not 1 + 2N.
        return catalogue_selectors.member_enrollments(member=member).annotate(
            lessons_total=Count("course__lessons", distinct=True),
            lessons_done=Count(
                "course__lessons__progress",
                filter=Q(course__lessons__progress__member=member, course__lessons__progress__completed_at__isnull=False),
                distinct=True,
            ),
        )


@extend_schema(
    tags=["me"], summary="Mark a lesson complete (idempotent)", request=None,
    description="400 `lesson_locked` when the member has no access to the course.",
    responses={200: s.LessonProgressOutput, **error_responses(400, 401, 404)},
    examples=[OpenApiExample("Done", response_only=True, value={
        "lesson": 31, "course": 3, "started_at": "2026-11-29T05:50:00Z", "completed_at": "2026-11-29T06:00:00Z"})],
)
class LessonCompleteView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def post(self, request: Request, pk: int) -> Response:
        lesson = _get_or_404(
            Lesson.objects.select_related("course").filter(course__in=catalogue_selectors.course_list()), pk=pk
        )
        progress = learning_progress.lesson_complete(member=request.user, lesson=lesson)
        return Response(s.LessonProgressOutput(progress).data)


# --------------------------------------------------------------------------------------------------------------
# Helpers


def _valid(serializer_class: type, request: Request, *, partial: bool = False) -> dict[str, Any]:
    serializer = serializer_class(data=request.data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _get_or_404(queryset: QuerySet[Any], **lookup: Any) -> Any:
    try:
        return queryset.get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise Http404 from None



# --------------------------------------------------------------------------------------------------------------
# More of what a learner does on the site


@extend_schema(
    tags=["me"], summary="Record that I opened a lesson (drives 'continue where you stopped')", request=None,
    description="400 `lesson_locked` without access (preview lessons are open to every member).",
    responses={204: OpenApiResponse(description="Recorded."), **error_responses(400, 401, 404)},
)
class LessonViewView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def post(self, request: Request, pk: int) -> Response:
        lesson = _get_or_404(
            Lesson.objects.select_related("course").filter(course__in=catalogue_selectors.course_list()), pk=pk
        )
        from members.learning.services import lesson_open_check

        lesson_open_check(member=request.user, lesson=lesson)  # course access and the drip schedule
        learning_progress.lesson_view(member=request.user, lesson=lesson)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(
    tags=["me"], summary="Replace my payment method (and retry a past-due renewal with it)",
    request=s.PaymentMethodInput, responses={200: s.PaymentMethodOutput, **error_responses(400, 401)},
    examples=[OpenApiExample("New card", value={"token": "local:ok-4242", "label": "Card ending 4242"},
                             request_only=True),
              OpenApiExample("Recovered", response_only=True,
                             value={"label": "Card ending 4242", "retried": True, "recovered": True, "error": ""})],
)
class PaymentMethodView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def put(self, request: Request) -> Response:
        from members.subscriptions.billing import payment_method_update_and_retry

        data = _valid(s.PaymentMethodInput, request)
        result = payment_method_update_and_retry(member=request.user, token=data["token"], label=data["label"])
        return Response(s.PaymentMethodOutput({"label": result.method.label, "retried": result.retried,
                                               "recovered": result.recovered, "error": result.error}).data)


OFFER_EXAMPLE = {"id": 2, "kind": "discount", "headline": "Stay for 30% off your next renewal",
                 "percent_off": "30.00", "pause_days": None}


class RetentionOfferView(APIView):
    """The save offer the cancellation flow shows before a cancellation is final."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(tags=["me"], summary="The save offer for my membership (null when none applies)",
                   parameters=[OpenApiParameter(name="reason", required=False, type=str,
                                                enum=list(Subscription.CancellationReason.values),
                                                description="The reason I am leaving: the offer written for it.")],
                   responses={200: s.RetentionOfferSlotOutput, **error_responses(401, 404)},
                   examples=[OpenApiExample("Offer", value={"offer": OFFER_EXAMPLE}, response_only=True)])
    def get(self, request: Request) -> Response:
        reason = request.query_params.get("reason", "")
        if reason not in Subscription.CancellationReason.values:
            reason = ""
        offer = subscriptions_selectors.retention_offer_for(subscription=_live_subscription(request.user), reason=reason)
        return Response(s.RetentionOfferSlotOutput({"offer": offer}).data)

    @extend_schema(
        tags=["me"], summary="Accept the save offer instead of cancelling (once per billing period)",
        request=s.OfferAcceptInput, parameters=[IDEMPOTENCY_KEY],
        description="The offer is the one shown for `reason`. 409 `offer_already_accepted` when an offer was "
        "already accepted for this billing period.",
        responses={200: s.OfferAcceptOutput, **error_responses(400, 401, 404, 409)},
        examples=[OpenApiExample("Accept", value={"reason": "too_expensive"}, request_only=True),
                  OpenApiExample("Discount", response_only=True,
                                 value={"kind": "discount", "coupon_code": "RET-1A2B3C4D5E", "paused_until": None})],
    )
    def post(self, request: Request) -> Response:
        from members.models import Coupon

        data = _valid(s.OfferAcceptInput, request)
        sub = _live_subscription(request.user)
        # Accepted offers stay visible to this door so a second accept is told 409 by the service, not 404.
        offer = subscriptions_selectors.retention_offer_for(subscription=sub, reason=data["reason"], hide_after_accept=False)
        if offer is None:
            raise Http404("There is no offer for this membership.")
        result = subscriptions_services.retention_offer_accept(subscription=sub, offer=offer, reason=data["reason"],
                                                 idempotency_key=_idempotency_key(request))
        if isinstance(result, Coupon):
            body = {"kind": offer.kind, "coupon_code": result.code, "paused_until": None}
        else:
            body = {"kind": offer.kind, "coupon_code": "", "paused_until": result.paused_until}
        return Response(s.OfferAcceptOutput(body).data)


REVIEW_EXAMPLE = {"id": 11, "member": {"id": 7, "name": "Alice"}, "rating": 5, "body": "Clear and practical.",
                  "helpful_count": 3, "created_at": "2026-11-20T10:00:00Z", "updated_at": "2026-11-20T10:00:00Z"}


def _review_data(review: Any) -> dict[str, Any]:
    return s.ReviewOutput({
        "id": review.pk, "member": {"id": review.member_id, "name": review.member.name}, "rating": review.rating,
        "body": review.body, "helpful_count": review.helpful_count, "created_at": review.created_at,
        "updated_at": review.updated_at,
    }).data


class CourseReviewsView(APIView):
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]

    @extend_schema(tags=["catalogue"], summary="A course's visible reviews, most helpful first",
                   responses={200: s.ReviewOutput(many=True), **error_responses(404)},
                   examples=[OpenApiExample("Reviews", value=[REVIEW_EXAMPLE], response_only=True)])
    def get(self, request: Request, slug: str) -> Response:
        from members.reviews import selectors as reviews_selectors

        course = _published_course(slug)
        return Response([_review_data(r) for r in reviews_selectors.course_reviews(course=course, limit=50)])

    @extend_schema(
        tags=["catalogue"], summary="Review a course I'm enrolled in (a second POST edits my review)",
        request=s.ReviewInput, responses={200: s.ReviewOutput, **error_responses(400, 401, 404)},
        examples=[OpenApiExample("Review", value={"rating": 5, "body": "Clear and practical."}, request_only=True),
                  OpenApiExample("Saved", value=REVIEW_EXAMPLE, response_only=True)],
    )
    def post(self, request: Request, slug: str) -> Response:
        from members.reviews import services as reviews_services

        data = _valid(s.ReviewInput, request)
        review = reviews_services.review_submit(member=request.user, course=_published_course(slug),
                                               rating=data["rating"], body=data["body"])
        review.member = request.user
        return Response(_review_data(review))


@extend_schema(tags=["catalogue"], summary="Mark someone else's review helpful (once)", request=None,
               responses={200: s.HelpfulOutput, **error_responses(400, 401, 404)},
               examples=[OpenApiExample("Marked", value={"marked": True, "helpful_count": 4}, response_only=True)])
class ReviewHelpfulView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def post(self, request: Request, pk: int) -> Response:
        from members.models import Review
        from members.reviews import services as reviews_services

        review = _get_or_404(Review.objects.filter(is_hidden=False, course__in=catalogue_selectors.course_list()), pk=pk)
        marked = reviews_services.review_mark_helpful(review=review, member=request.user)
        review.refresh_from_db(fields=["helpful_count"])
        return Response(s.HelpfulOutput({"marked": marked, "helpful_count": review.helpful_count}).data)


@extend_schema(tags=["me"], summary="My referral code, invite link and the friends it brought",
               responses={200: s.ReferralOutput, **error_responses(401)},
               examples=[OpenApiExample("Referral", response_only=True, value={
                   "code": "ALICE7K2", "invite_url": "https://learning.example/r/ALICE7K2/",
                   "referrals": [{"status": "rewarded", "created_at": "2026-10-02T09:00:00Z",
                                  "rewarded_at": "2026-10-20T02:00:00Z"}]})])
class ReferralView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def get(self, request: Request) -> Response:
        from django.urls import reverse

        from members.referrals import selectors as referrals_selectors
        from members.referrals import services as referrals_services

        code = referrals_services.referral_code_for(member=request.user)
        return Response(s.ReferralOutput({
            "code": code.code,
            "invite_url": request.build_absolute_uri(reverse("members:referral_landing", args=[code.code])),
            "referrals": list(referrals_selectors.member_referrals(member=request.user)),
        }).data)


@extend_schema(tags=["me"], summary="Everything the platform holds about me, as JSON (the 'My data' download)",
               responses={200: s.MemberExportOutput, **error_responses(401)},
               examples=[OpenApiExample("Export", response_only=True, value={
                   "format": "learning-club-member-export/1", "exported_at": "2026-11-29T06:00:00Z",
                   "member": {"id": 7, "email": "alice@example.com"},
                   "models": {"members.Order": [{"id": 501, "amount_paid": "159.20"}]}})])
class MemberExportView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def get(self, request: Request) -> Response:
        from members.privacy import services as privacy_services

        return Response(privacy_services.member_export(member=request.user))
