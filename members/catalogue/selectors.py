"""Reads for the members app. Querysets come back with their joins already applied."""
from __future__ import annotations

from datetime import datetime

from django.db.models import Prefetch, QuerySet

from members.models import Course, Enrollment, Lesson, MembershipTier, User


def tier_list(*, public_only: bool = True) -> QuerySet[MembershipTier]:
    qs = MembershipTier.objects.filter(is_active=True).prefetch_related("benefits")
    return qs.filter(is_public=True) if public_only else qs


def course_list(*, published_only: bool = True) -> QuerySet[Course]:
    qs = Course.objects.filter(is_generic=False)
    return qs.filter(is_published=True) if published_only else qs


def course_with_lessons(*, slug: str) -> Course:
    return Course.objects.prefetch_related(Prefetch("lessons", queryset=Lesson.objects.order_by("position"))).get(slug=slug)


def member_has_course_access(*, member: User, course: Course, when: datetime | None = None) -> bool:
    """Whether the member may open the course's lessons; decided by members.commerce.entitlements, like checkout."""
    from members.commerce.entitlements import course_entitlement

    if not getattr(member, "is_authenticated", False):
        return False
    return course_entitlement(member=member, course=course, when=when).can_open


def member_enrollments(*, member: User) -> QuerySet[Enrollment]:
    return Enrollment.objects.filter(member=member).select_related("course").order_by("-last_activity_at", "-enrolled_at")
