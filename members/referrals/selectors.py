"""Reads for referrals: a member's invitations, the staff referral report."""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import (
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce

from members.models import Order, Referral, User


def member_referrals(*, member: User) -> QuerySet[Referral]:
    return Referral.objects.filter(referrer=member).select_related("referred", "reward_coupon").order_by("-created_at")


@dataclass(frozen=True)
class ReferralReport:
    signups: int  # attributed sign-ups that were not refused
    rejected: int
    converted: int  # of those sign-ups, how many made a first paid order
    rewarded: int
    referred_buyers: int
    referred_repeat_buyers: int
    other_buyers: int
    other_repeat_buyers: int

    @staticmethod
    def _rate(part: int, whole: int) -> float | None:
        return round(100 * part / whole, 1) if whole else None

    @property
    def conversion_rate(self) -> float | None:
        return self._rate(self.converted, self.signups)

    @property
    def referred_repurchase_rate(self) -> float | None:
        return self._rate(self.referred_repeat_buyers, self.referred_buyers)

    @property
    def other_repurchase_rate(self) -> float | None:
        return self._rate(self.other_repeat_buyers, self.other_buyers)


def referral_report() -> ReferralReport:
    """Referral conversion, and the repurchase rate (share of buyers with 2+ paid orders) of referred members
    against everyone else. Two aggregate queries whatever the member count."""
    statuses = Referral.objects.aggregate(
        signups=Count("pk", filter=~Q(status=Referral.Status.REJECTED)),
        rejected=Count("pk", filter=Q(status=Referral.Status.REJECTED)),
        converted=Count("pk", filter=Q(status__in=[Referral.Status.QUALIFIED, Referral.Status.REWARDED])),
        rewarded=Count("pk", filter=Q(status=Referral.Status.REWARDED)),
    )
    paid = (
        Order.objects.filter(member=OuterRef("pk"), status=Order.Status.PAID)
        .order_by().values("member").annotate(n=Count("pk")).values("n")
    )
    referred = Referral.objects.filter(referred=OuterRef("pk")).exclude(status=Referral.Status.REJECTED)
    rows = (
        User.objects.filter(anonymized_at__isnull=True)
        .annotate(paid_n=Coalesce(Subquery(paid, output_field=IntegerField()), 0), is_referred=Exists(referred))
        .filter(paid_n__gte=1)
        .values("is_referred")
        .annotate(buyers=Count("pk"), repeaters=Count("pk", filter=Q(paid_n__gte=2)))
        .order_by()
    )
    split = {row["is_referred"]: row for row in rows}
    empty = {"buyers": 0, "repeaters": 0}
    return ReferralReport(
        **statuses,
        referred_buyers=split.get(True, empty)["buyers"], referred_repeat_buyers=split.get(True, empty)["repeaters"],
        other_buyers=split.get(False, empty)["buyers"], other_repeat_buyers=split.get(False, empty)["repeaters"],
    )


def referrals() -> QuerySet[Referral]:
    """Every referral, for other apps to filter."""
    return Referral.objects.all()
