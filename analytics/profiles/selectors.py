"""The staff member profile (用户画像): one read-only snapshot of a member across every app.

Each section is one query — a bounded list (latest N) or an aggregate computed in SQL — so the page costs the same
number of queries for a member with three events as for one with three hundred thousand. This is a report
selector: it reads members and community tables read-only and never writes them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import (
    Avg,
    Count,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import (
    Coalesce,
    ExtractHour,
    ExtractIsoWeekDay,
    TruncDate,
)
from django.utils import timezone

from analytics.ml.reasons import reasons_display
from analytics.models import (
    EngagementScore,
    Event,
    MessageLog,
    PropensityScore,
    SegmentAssignment,
)
from analytics.recommendations.selectors import StoredRecommendation, current_recommendations
from community import selectors as community_selectors
from members.accounts import selectors as account_selectors
from members.catalogue import selectors as catalogue_selectors
from members.commerce import selectors as commerce_selectors
from members.commerce.selectors import OrderStatus
from members.referrals import selectors as referral_selectors
from members.reviews import selectors as review_selectors
from members.subscriptions import selectors as subscription_selectors

LIST_LIMIT = 20
HABIT_WINDOW_DAYS = 90
TREND_POINTS = 30
# The recommender's feedback events (analytics/api/views.py FEEDBACK_KINDS); the older names are counted too.
SHOWN_KINDS = ("recommendation_impression", "recommendation_shown")
CLICKED_KINDS = ("recommendation_click", "recommendation_clicked")


@dataclass(frozen=True)
class MemberProfile:
    member: Any
    subscriptions: list[Any]
    orders: list[Any]
    order_stats: dict[str, Any]
    coupons: list[Any]
    learning: dict[str, Any]
    topics: list[dict[str, Any]]
    hours: list[tuple[int, int, int]]  # (hour, events, percent of the busiest hour)
    weekdays: list[tuple[int, int, int]]
    active_days: int
    community: dict[str, int]
    recent_posts: list[Any]
    engagement: list[EngagementScore]
    segments: list[SegmentAssignment]
    propensity: PropensityScore | None
    reasons: list[dict]  # the propensity's stored reason codes with `text` in the viewer's language
    recommendations: list[StoredRecommendation]
    recommendation_events: dict[str, int]
    messages: list[MessageLog]
    message_counts: list[dict[str, Any]]
    referrals_made: list[Any]
    referral_received: Any | None
    reviews: dict[str, Any]

    @property
    def engagement_points(self) -> list[EngagementScore]:
        return list(reversed(self.engagement))  # oldest first, for the trend line


def _count(rows: QuerySet[Any], field: str) -> Subquery:
    return Subquery(
        rows.filter(**{field: OuterRef("pk")}).order_by().values(field).annotate(n=Count("pk")).values("n"),
        output_field=IntegerField(),
    )


def _histogram(rows: list[dict[str, Any]], key: str, keys: range) -> list[tuple[int, int, int]]:
    counts = {row[key]: row["n"] for row in rows}
    peak = max(counts.values(), default=0)
    return [(k, counts.get(k, 0), round(100 * counts.get(k, 0) / peak) if peak else 0) for k in keys]


def _member_zone(member: Any) -> ZoneInfo:
    try:
        return ZoneInfo(member.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def member_profile(*, member_id: int, now: datetime | None = None) -> MemberProfile:
    now = now or timezone.now()
    since = now - timedelta(days=HABIT_WINDOW_DAYS)
    member = (
        account_selectors.users().annotate(
            posts_n=Coalesce(_count(community_selectors.posts(), "author"), 0),
            comments_n=Coalesce(_count(community_selectors.comments(), "author"), 0),
            reactions_n=Coalesce(_count(community_selectors.reactions(), "member"), 0),
            followers_n=Coalesce(_count(community_selectors.follows(), "followed"), 0),
            following_n=Coalesce(_count(community_selectors.follows(), "follower"), 0),
        ).get(pk=member_id)
    )
    zone = _member_zone(member)
    recent_events = Event.objects.filter(member_id=member_id, occurred_at__gte=since, occurred_at__lte=now).order_by()

    learning = catalogue_selectors.enrollments().filter(member_id=member_id).aggregate(
        enrolled=Count("pk"), completed=Count("pk", filter=Q(completed_at__isnull=False)),
        last_activity=Max("last_activity_at"),
    )
    learning["completion_rate"] = round(100 * learning["completed"] / learning["enrolled"]) if learning["enrolled"] else None

    order_stats = commerce_selectors.orders().filter(member_id=member_id).aggregate(
        paid=Count("pk", filter=Q(status=OrderStatus.PAID)),
        refunded=Count("pk", filter=Q(status=OrderStatus.REFUNDED)),
        revenue=Sum("amount_paid", filter=Q(status=OrderStatus.PAID)),
        first_paid=Min("paid_at"), last_paid=Max("paid_at"),
    )
    redeemed = (commerce_selectors.coupon_redemptions().filter(coupon=OuterRef("pk"), member_id=member_id)
                .values("redeemed_at")[:1])

    propensity = (PropensityScore.objects.filter(member_id=member_id).select_related("model_version")
                  .order_by("-as_of").first())
    return MemberProfile(
        member=member,
        subscriptions=list(subscription_selectors.subscriptions().filter(member_id=member_id).select_related("tier")
                           .order_by("-started_at")[:LIST_LIMIT]),
        orders=list(commerce_selectors.orders().filter(member_id=member_id).select_related("course", "tier", "coupon")
                    .order_by("-created_at")[:LIST_LIMIT]),
        order_stats=order_stats,
        coupons=list(commerce_selectors.coupons().filter(assigned_member_id=member_id)
                     .annotate(redeemed_at=Subquery(redeemed)).order_by("-created_at")[:LIST_LIMIT]),
        learning=learning,
        topics=list(catalogue_selectors.enrollments().filter(member_id=member_id).exclude(course__topic="")
                    .values("course__topic").annotate(n=Count("pk"), done=Count("pk", filter=Q(completed_at__isnull=False)))
                    .order_by("-n", "course__topic")[:5]),
        hours=_histogram(list(recent_events.annotate(h=ExtractHour("occurred_at", tzinfo=zone)).values("h")
                              .annotate(n=Count("pk"))), "h", range(24)),
        weekdays=_histogram(list(recent_events.annotate(d=ExtractIsoWeekDay("occurred_at", tzinfo=zone)).values("d")
                                 .annotate(n=Count("pk"))), "d", range(1, 8)),
        active_days=recent_events.annotate(day=TruncDate("occurred_at", tzinfo=zone)).values("day").distinct().count(),
        community={"posts": member.posts_n, "comments": member.comments_n, "reactions": member.reactions_n,
                   "followers": member.followers_n, "following": member.following_n},
        recent_posts=list(community_selectors.posts().filter(author_id=member_id).order_by("-created_at")[:5]),
        engagement=list(EngagementScore.objects.filter(member_id=member_id).order_by("-as_of")[:TREND_POINTS]),
        segments=list(SegmentAssignment.objects.filter(member_id=member_id).order_by("-as_of")[:10]),
        propensity=propensity,
        reasons=reasons_display(propensity.top_reasons) if propensity else [],
        recommendations=current_recommendations(member_id=member_id)[:10],
        recommendation_events=Event.objects.filter(member_id=member_id).aggregate(
            shown=Count("pk", filter=Q(kind__in=SHOWN_KINDS)),
            clicked=Count("pk", filter=Q(kind__in=CLICKED_KINDS)),
        ),
        messages=list(MessageLog.objects.filter(member_id=member_id).order_by("-created_at")[:LIST_LIMIT]),
        message_counts=list(MessageLog.objects.filter(member_id=member_id).values("kind")
                            .annotate(n=Count("pk")).order_by("-n")),
        referrals_made=list(referral_selectors.referrals().filter(referrer_id=member_id).select_related("referred")
                            .order_by("-created_at")[:LIST_LIMIT]),
        referral_received=(referral_selectors.referrals().filter(referred_id=member_id).select_related("referrer")
                           .first()),
        reviews=review_selectors.reviews().filter(member_id=member_id).aggregate(n=Count("pk"), average=Avg("rating")),
    )
