"""What a member may open and what they would pay: one function, used by checkout (form and API), the lesson
player's access check and the price quote (through catalogue.selectors.member_course_entitlement, which looks up
the member's tier), so "included in your membership" means the same thing everywhere.

    owned      an enrollment exists (bought, gifted, free, or opened once through the membership)
    included   the member's active tier has all-course access: open it, nothing to pay; checkout refuses
    for_sale   published and priced: the member pays list price less their tier's course discount
    not_for_sale  unpublished or a placeholder course (imported history)
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from members.models import Benefit, Course, Enrollment, MembershipTier, User

# Commerce's money arithmetic (members.commerce.pricing), repeated here because commerce reads entitlements: catalogue
# must not import commerce back (import-linter: packages of an app form a DAG).
CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def money(value: Decimal | int | str) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def percent_of(amount: Decimal, percent: Decimal) -> Decimal:
    return money(amount * percent / Decimal(100))


@dataclass(frozen=True)
class CourseEntitlement:
    status: str  # owned | included | for_sale | not_for_sale
    tier: MembershipTier | None
    list_price: Decimal
    member_discount: Decimal

    OWNED = "owned"
    INCLUDED = "included"
    FOR_SALE = "for_sale"
    NOT_FOR_SALE = "not_for_sale"

    @property
    def can_open(self) -> bool:
        return self.status in (self.OWNED, self.INCLUDED)

    @property
    def can_buy(self) -> bool:
        return self.status == self.FOR_SALE

    @property
    def price(self) -> Decimal:
        """What the member would pay before any coupon (zero when they may already open it)."""
        if self.can_open:
            return ZERO
        return max(ZERO, money(self.list_price - self.member_discount))


def course_entitlement(*, member: User | None, course: Course, tier: MembershipTier | None) -> CourseEntitlement:
    """Decide access and price for one member and course, given the tier whose benefits the member enjoys now
    (catalogue.selectors.member_course_entitlement looks it up; lists of courses pass the one they already have)."""
    list_price = money(course.price)
    authenticated = bool(member is not None and getattr(member, "is_authenticated", False))
    if authenticated and Enrollment.objects.filter(member=member, course=course).exists():
        return CourseEntitlement(CourseEntitlement.OWNED, tier, list_price, ZERO)
    if tier is not None and tier.has_benefit(Benefit.Kind.ALL_COURSES) and not course.is_generic:
        return CourseEntitlement(CourseEntitlement.INCLUDED, tier, list_price, list_price)
    if not course.is_published or course.is_generic:
        return CourseEntitlement(CourseEntitlement.NOT_FOR_SALE, tier, list_price, ZERO)
    pct = tier.benefit_value(Benefit.Kind.COURSE_DISCOUNT) if tier is not None else None
    return CourseEntitlement(CourseEntitlement.FOR_SALE, tier, list_price, percent_of(list_price, pct) if pct else ZERO)
