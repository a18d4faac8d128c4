"""What a member did with their membership period so far: the recap a renewal reminder shows (read-only)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from analytics.models import (
    Event,
)
from community import selectors as community_selectors
from members.catalogue import selectors as catalogue_selectors
from members.catalogue.selectors import BenefitKind, EnrollmentSource
from members.commerce import selectors as commerce_selectors
from members.commerce.selectors import OrderKind, OrderStatus

# Event kinds that prove a benefit was used when the domain tables don't say it directly.
BENEFIT_EVENT_KINDS: dict[str, tuple[str, ...]] = {
    BenefitKind.LIVE_QA: ("live_qa_joined", "live_qa_attended"),
    BenefitKind.DOWNLOADS: ("lesson_downloaded", "download"),
    BenefitKind.MONTHLY_CREDITS: ("credit_used", "credits_redeemed"),
    BenefitKind.CERTIFICATES: ("certificate_issued", "course_completed"),
}


@dataclass(frozen=True)
class PeriodRecap:
    lessons_finished: int
    posts: int
    comments: int
    benefits_used: list[str] = field(default_factory=list)
    benefits_unused: list[str] = field(default_factory=list)


def period_recap(*, subscription: Any, when: datetime | None = None) -> PeriodRecap:
    """What the member did with this period so far (read-only queries on members, community and events)."""
    when = when or timezone.now()
    member_id = subscription.member_id
    start = subscription.current_period_start
    lessons = (catalogue_selectors.lesson_progress_rows()
               .filter(member_id=member_id, completed_at__gte=start, completed_at__lte=when).count())
    posts = community_selectors.posts().filter(author_id=member_id, created_at__gte=start, created_at__lte=when).count()
    comments = (community_selectors.comments()
                .filter(author_id=member_id, created_at__gte=start, created_at__lte=when).count())
    used: list[str] = []
    unused: list[str] = []
    for benefit in subscription.tier.benefits.all():
        if benefit.kind == BenefitKind.ALL_COURSES:
            is_used = lessons > 0 or catalogue_selectors.enrollments().filter(
                member_id=member_id, source=EnrollmentSource.MEMBERSHIP, last_activity_at__gte=start
            ).exists()
        elif benefit.kind == BenefitKind.COURSE_DISCOUNT:
            is_used = commerce_selectors.orders().filter(
                member_id=member_id, kind=OrderKind.COURSE, status=OrderStatus.PAID, paid_at__gte=start,
                discount__gt=0,
            ).exists()
        elif benefit.kind == BenefitKind.COMMUNITY:
            is_used = posts + comments > 0
        else:
            kinds = BENEFIT_EVENT_KINDS.get(benefit.kind, ())
            is_used = bool(kinds) and Event.objects.filter(
                member_id=member_id, kind__in=kinds, occurred_at__gte=start, occurred_at__lte=when
            ).exists()
        (used if is_used else unused).append(str(benefit))
    return PeriodRecap(lessons_finished=lessons, posts=posts, comments=comments, benefits_used=used,
                       benefits_unused=unused)
