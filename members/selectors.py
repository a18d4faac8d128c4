"""Reads for the members app. Querysets come back with their joins already applied."""
from __future__ import annotations

from datetime import datetime

from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from members.models import (
    Coupon,
    Course,
    Enrollment,
    Lesson,
    MembershipTier,
    Order,
    RetentionOffer,
    Subscription,
    User,
)


def tier_list(*, public_only: bool = True) -> QuerySet[MembershipTier]:
    qs = MembershipTier.objects.filter(is_active=True).prefetch_related("benefits")
    return qs.filter(is_public=True) if public_only else qs


def course_list(*, published_only: bool = True) -> QuerySet[Course]:
    qs = Course.objects.filter(is_generic=False)
    return qs.filter(is_published=True) if published_only else qs


def course_with_lessons(*, slug: str) -> Course:
    return Course.objects.prefetch_related(Prefetch("lessons", queryset=Lesson.objects.order_by("position"))).get(slug=slug)


def live_subscription(*, member: User) -> Subscription | None:
    if not getattr(member, "is_authenticated", False):
        return None
    return (
        Subscription.objects.filter(member=member, status__in=Subscription.LIVE_STATUSES)
        .select_related("tier")
        .prefetch_related("tier__benefits")
        .first()
    )


def latest_subscription(*, member: User) -> Subscription | None:
    return Subscription.objects.filter(member=member).select_related("tier").order_by("-started_at").first()


def active_tier(*, member: User, when: datetime | None = None) -> MembershipTier | None:
    """The tier whose benefits the member enjoys now, if any (trial, paid period, grace, or canceled-but-paid)."""
    if not getattr(member, "is_authenticated", False):
        return None
    when = when or timezone.now()
    for sub in (
        Subscription.objects.filter(member=member)
        .exclude(status=Subscription.Status.EXPIRED)
        .select_related("tier")
        .prefetch_related("tier__benefits")
        .order_by("-started_at")[:2]
    ):
        if sub.is_active_at(when):
            return sub.tier
    return None


def member_has_course_access(*, member: User, course: Course, when: datetime | None = None) -> bool:
    """Whether the member may open the course's lessons; decided by members.commerce.entitlements, like checkout."""
    from members.commerce.entitlements import course_entitlement

    if not getattr(member, "is_authenticated", False):
        return False
    return course_entitlement(member=member, course=course, when=when).can_open


def retention_offer_for(
    *, subscription: Subscription, reason: str = "", hide_after_accept: bool = True
) -> RetentionOffer | None:
    """The save offer to show a member leaving for `reason`: an offer written for that reason before an offer for
    any reason, newest first among equals; none once one was accepted this billing period (unless
    hide_after_accept=False: the accept door then gets the offer and the service refuses the second acceptance)."""
    if hide_after_accept and subscription.offer_acceptances.filter(period_start=subscription.current_period_start).exists():
        return None
    offers = list(
        RetentionOffer.objects.filter(is_active=True)
        .filter(Q(tiers=subscription.tier) | Q(tiers__isnull=True))
        .distinct().order_by("-created_at", "-pk")
    )
    if reason:
        offers = [offer for offer in offers if offer.answers(reason)]
        offers.sort(key=lambda offer: not offer.reasons)  # stable: keeps newest-first within each group
    return offers[0] if offers else None


def owned_course_ids(*, member: User) -> set[int]:
    return set(Enrollment.objects.filter(member=member).values_list("course_id", flat=True))


def member_orders(*, member: User) -> QuerySet[Order]:
    return Order.objects.filter(member=member).select_related("course", "tier", "coupon").order_by("-created_at")


def member_coupons(*, member: User, when: datetime | None = None) -> QuerySet[Coupon]:
    """Coupons assigned to the member that are still usable."""
    when = when or timezone.now()
    return (
        Coupon.objects.filter(assigned_member=member, is_active=True, valid_from__lte=when)
        .exclude(valid_until__lte=when)
        .exclude(redemptions__member=member)
        .order_by("valid_until")
    )


def member_enrollments(*, member: User) -> QuerySet[Enrollment]:
    return Enrollment.objects.filter(member=member).select_related("course").order_by("-last_activity_at", "-enrolled_at")
