"""Reads for commerce: courses a member owns, their orders and coupons."""
from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from members.models import Coupon, Enrollment, Order, User


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


def coupon_get(*, coupon_id: int | None) -> Coupon | None:
    return Coupon.objects.filter(pk=coupon_id).first() if coupon_id is not None else None
