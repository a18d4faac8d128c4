"""What a member may open and what they would pay: one function, used by checkout (form and API), the lesson
player's access check and the price quote, so "included in your membership" means the same thing everywhere.

    owned      an enrollment exists (bought, gifted, free, or opened once through the membership)
    included   the member's active tier has all-course access: open it, nothing to pay; checkout refuses
    for_sale   published and priced: the member pays list price less their tier's course discount
    not_for_sale  unpublished or a placeholder course (imported history)
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from members.commerce.pricing import ZERO, money, percent_of
from members.models import Benefit, Course, Enrollment, MembershipTier, User


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


def course_entitlement(
    *, member: User | None, course: Course, when: datetime | None = None, tier: MembershipTier | None | bool = False
) -> CourseEntitlement:
    """Decide access and price for one member and course. `tier` may be passed when the caller already knows the
    member's active tier (lists of courses); False means "look it up"."""
    from members.subscriptions.selectors import active_tier  # catalogue's access check delegates here

    when = when or timezone.now()
    list_price = money(course.price)
    authenticated = bool(member is not None and getattr(member, "is_authenticated", False))
    if tier is False:
        tier = active_tier(member=member, when=when) if authenticated else None
    assert tier is not True
    if authenticated and Enrollment.objects.filter(member=member, course=course).exists():
        return CourseEntitlement(CourseEntitlement.OWNED, tier, list_price, ZERO)
    if tier is not None and tier.has_benefit(Benefit.Kind.ALL_COURSES) and not course.is_generic:
        return CourseEntitlement(CourseEntitlement.INCLUDED, tier, list_price, list_price)
    if not course.is_published or course.is_generic:
        return CourseEntitlement(CourseEntitlement.NOT_FOR_SALE, tier, list_price, ZERO)
    pct = tier.benefit_value(Benefit.Kind.COURSE_DISCOUNT) if tier is not None else None
    return CourseEntitlement(CourseEntitlement.FOR_SALE, tier, list_price, percent_of(list_price, pct) if pct else ZERO)
