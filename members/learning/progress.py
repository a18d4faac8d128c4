"""Writes for lesson progress: a lesson viewed, a lesson completed (and the course with it)."""
from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from analytics.tracking import record_event
from members import exceptions
from members.catalogue.selectors import member_has_course_access
from members.learning import services as learning_services
from members.models import (
    Enrollment,
    Lesson,
    LessonProgress,
    User,
)


def lesson_complete(*, member: User, lesson: Lesson, when: datetime | None = None) -> LessonProgress:
    """Mark a lesson done (idempotent). Members with all-course access are enrolled on first use."""
    when = when or timezone.now()
    course = lesson.course
    if not lesson.is_preview and not member_has_course_access(member=member, course=course, when=when):
        raise exceptions.LessonLocked()
    learning_services.lesson_open_check(member=member, lesson=lesson, when=when)  # the drip schedule
    with transaction.atomic():
        enrollment, _created = Enrollment.objects.get_or_create(
            member=member, course=course, defaults={"source": Enrollment.Source.MEMBERSHIP, "enrolled_at": when}
        )
        progress, _ = LessonProgress.objects.get_or_create(member=member, lesson=lesson, defaults={"started_at": when})
        if progress.completed_at is None:
            progress.completed_at = when
            progress.save(update_fields=["completed_at"])
            record_event(member=member, kind="lesson_completed", obj=lesson, occurred_at=when,
                         properties={"course_id": course.pk})
        enrollment.last_activity_at = when
        total = course.lessons.count()
        done = LessonProgress.objects.filter(member=member, lesson__course=course, completed_at__isnull=False).count()
        if total and done >= total and enrollment.completed_at is None:
            enrollment.completed_at = when
            record_event(member=member, kind="course_completed", obj=course, occurred_at=when)
        enrollment.save(update_fields=["last_activity_at", "completed_at"])
    learning_services.certificate_issue_if_earned(member=member, course=course, when=when)
    return progress


def lesson_view(*, member: User, lesson: Lesson, when: datetime | None = None) -> None:
    """Record that a lesson was opened (drives 'continue where you stopped')."""
    when = when or timezone.now()
    with transaction.atomic():
        LessonProgress.objects.get_or_create(member=member, lesson=lesson, defaults={"started_at": when})
        Enrollment.objects.filter(member=member, course_id=lesson.course_id).update(last_activity_at=when)
        record_event(member=member, kind="lesson_viewed", obj=lesson, occurred_at=when,
                     properties={"course_id": lesson.course_id})
