"""Money arithmetic. Decimal throughout, rounded half-up to cents, never below zero."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from members.models import Coupon

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def money(value: Decimal | int | str) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def percent_of(amount: Decimal, percent: Decimal) -> Decimal:
    return money(amount * percent / Decimal(100))


@dataclass(frozen=True)
class Quote:
    list_price: Decimal
    member_discount: Decimal
    coupon_discount: Decimal
    coupon: Coupon | None
    currency: str

    @property
    def discount(self) -> Decimal:
        return money(self.member_discount + self.coupon_discount)

    @property
    def total(self) -> Decimal:
        return max(ZERO, money(self.list_price - self.discount))


def coupon_discount(*, coupon: Coupon, amount: Decimal) -> Decimal:
    """What the coupon takes off `amount`; never more than the amount itself."""
    if coupon.discount_type == Coupon.DiscountType.PERCENT:
        off = percent_of(amount, coupon.percent_off or ZERO)
    else:
        off = money(coupon.amount_off or ZERO)
    return min(off, money(amount))
