"""Reads for commerce: courses a member owns, their orders and coupons."""
from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from members.models import Coupon, CouponRedemption, Enrollment, Order, User


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


# Choices other apps filter on (analytics reads these instead of importing members.models).
OrderKind = Order.Kind
OrderStatus = Order.Status
CouponSource = Coupon.Source
CouponDiscountType = Coupon.DiscountType


def orders() -> QuerySet[Order]:
    """Every order, for other apps to filter and aggregate."""
    return Order.objects.all()


def paid_orders() -> QuerySet[Order]:
    """Orders that were paid (status paid with a payment time)."""
    return Order.objects.filter(status=Order.Status.PAID, paid_at__isnull=False)


def coupons() -> QuerySet[Coupon]:
    """Every coupon, for other apps to filter and aggregate."""
    return Coupon.objects.all()


def coupon_redemptions() -> QuerySet[CouponRedemption]:
    """Every coupon redemption, for other apps to filter."""
    return CouponRedemption.objects.all()
