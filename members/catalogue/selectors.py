"""Reads for the members app. Querysets come back with their joins already applied."""
from __future__ import annotations

from datetime import datetime

from django.db.models import CharField, F, OuterRef, Prefetch, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, NullIf
from django.utils.translation import get_language
from modeltranslation.utils import build_localized_fieldname

from members.models import Benefit, Course, Enrollment, Lesson, MembershipTier, Topic, User
from members.subscriptions.selectors import active_tier


def tier_list(*, public_only: bool = True) -> QuerySet[MembershipTier]:
    qs = MembershipTier.objects.filter(is_active=True).prefetch_related("benefits")
    return qs.filter(is_public=True) if public_only else qs


def topic_name() -> Coalesce:
    """The course's topic name in the active language (English when untranslated, the code when there is no Topic
    row), as a correlated subquery: course lists stay one query."""
    column = build_localized_fieldname("name", get_language() or "en")
    label = Topic.objects.filter(slug=OuterRef("topic")).annotate(
        label=Coalesce(NullIf(column, Value("")), NullIf("name_en", Value("")), output_field=CharField())
    ).values("label")[:1]
    return Coalesce(Subquery(label, output_field=CharField()), F("topic"), output_field=CharField())


def course_list(*, published_only: bool = True) -> QuerySet[Course]:
    qs = Course.objects.filter(is_generic=False).annotate(topic_name=topic_name())
    return qs.filter(is_published=True) if published_only else qs


def course_with_lessons(*, slug: str) -> Course:
    return Course.objects.prefetch_related(Prefetch("lessons", queryset=Lesson.objects.order_by("position"))).get(slug=slug)


def member_has_course_access(*, member: User, course: Course, when: datetime | None = None) -> bool:
    if not getattr(member, "is_authenticated", False):
        return False
    if Enrollment.objects.filter(member=member, course=course).exists():
        return True
    tier = active_tier(member=member, when=when)
    return bool(tier and tier.has_benefit(Benefit.Kind.ALL_COURSES))


def member_enrollments(*, member: User) -> QuerySet[Enrollment]:
    return Enrollment.objects.filter(member=member).select_related("course").order_by("-last_activity_at", "-enrolled_at")
