"""Reads for rich lessons: who may open, play and download what, and when a dripped lesson opens.

Entitlement has three layers:

* **open the lesson** — a preview lesson, or course access (an enrolment, or a live tier with all-course access,
  `members.selectors.member_has_course_access`), and the lesson's drip date has passed;
* **download attachments** — open, and either the course was bought/gifted (an enrolment that does not come from a
  membership) or the live tier has the Downloads benefit;
* **a certificate** — the same rule with the Certificates benefit, once every lesson is done and every quiz passed.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from members.catalogue import selectors as catalogue_selectors
from members.models import (
    Benefit,
    Certificate,
    Course,
    Enrollment,
    Lesson,
    LessonAttachment,
    LessonProgress,
    Quiz,
    QuizAttempt,
    User,
)


@dataclass(frozen=True)
class LessonAccess:
    """What one member may do with one lesson right now."""

    course_access: bool  # enrolled, or a live tier that includes every course
    is_open: bool  # may read, play and complete it (preview, or access and the drip date has passed)
    opens_at: datetime | None  # set while the drip schedule still holds it back
    can_download: bool

    @property
    def drip_locked(self) -> bool:
        return self.opens_at is not None


@dataclass(frozen=True)
class CourseCompletion:
    lessons_total: int
    lessons_done: int
    quizzes_total: int
    quizzes_passed: int

    @property
    def is_complete(self) -> bool:
        return self.lessons_total > 0 and self.lessons_done >= self.lessons_total and (
            self.quizzes_passed >= self.quizzes_total
        )


def _authenticated(member: User | None) -> bool:
    return bool(getattr(member, "is_authenticated", False))


def enrollment_for(*, member: User, course: Course) -> Enrollment | None:
    if not _authenticated(member):
        return None
    return Enrollment.objects.filter(member=member, course=course).first()


def drip_start(*, member: User, course: Course, enrollment: Enrollment | None) -> datetime | None:
    """When the member's drip clock for the course started: enrolment, or for a member with all-course access who
    is not enrolled yet (they are enrolled on their first completed lesson) the first time they opened one of its
    lessons. None: not started, so the clock would start now."""
    if enrollment is not None:
        return enrollment.enrolled_at
    if not _authenticated(member):
        return None
    return (
        LessonProgress.objects.filter(member=member, lesson__course=course)
        .order_by("started_at").values_list("started_at", flat=True).first()
    )


def lesson_opens_at(*, lesson: Lesson, enrolled_at: datetime | None, when: datetime) -> datetime | None:
    """When a dripped lesson opens for this member, or None when it is open now (the clock starts at `enrolled_at`,
    see drip_start; None means it starts now)."""
    if lesson.is_preview or not lesson.drip_days:
        return None
    opens = (enrolled_at or when) + timedelta(days=lesson.drip_days)
    return opens if opens > when else None


def _benefit_or_owned(*, member: User, enrollment: Enrollment | None, kind: str, when: datetime) -> bool:
    if enrollment is not None and enrollment.source != Enrollment.Source.MEMBERSHIP:
        return True
    tier = catalogue_selectors.active_tier(member=member, when=when)
    return bool(tier and tier.has_benefit(kind))


def lesson_access(*, member: User, lesson: Lesson, when: datetime | None = None) -> LessonAccess:
    when = when or timezone.now()
    if not _authenticated(member):
        return LessonAccess(course_access=False, is_open=lesson.is_preview, opens_at=None, can_download=False)
    course = lesson.course
    enrollment = enrollment_for(member=member, course=course)
    course_access = enrollment is not None or catalogue_selectors.member_has_course_access(
        member=member, course=course, when=when
    )
    if not course_access:
        return LessonAccess(course_access=False, is_open=lesson.is_preview, opens_at=None, can_download=False)
    start = drip_start(member=member, course=course, enrollment=enrollment) if lesson.drip_days else None
    opens_at = lesson_opens_at(lesson=lesson, enrolled_at=start, when=when)
    is_open = opens_at is None
    can_download = is_open and _benefit_or_owned(
        member=member, enrollment=enrollment, kind=Benefit.Kind.DOWNLOADS, when=when
    )
    return LessonAccess(course_access=True, is_open=is_open, opens_at=opens_at, can_download=can_download)


def course_schedule(*, member: User, course: Course, when: datetime | None = None) -> dict[int, datetime | None]:
    """lesson id → the date a dripped lesson opens for this member (None: open now, or no drip). Two queries."""
    when = when or timezone.now()
    enrollment = enrollment_for(member=member, course=course)
    enrolled_at = drip_start(member=member, course=course, enrollment=enrollment)
    return {
        lesson.pk: lesson_opens_at(lesson=lesson, enrolled_at=enrolled_at, when=when)
        for lesson in course.lessons.all()
    }


def lesson_with_extras(*, lesson_id: int) -> Lesson:
    """The lesson with its course, attachments and quiz (questions and choices) loaded."""
    return (
        Lesson.objects.select_related("course")
        .prefetch_related(
            "attachments",
            Prefetch("quiz", queryset=Quiz.objects.prefetch_related("questions__choices")),
        )
        .get(pk=lesson_id)
    )


def lesson_quiz(*, lesson: Lesson) -> Quiz | None:
    try:
        return lesson.quiz
    except Quiz.DoesNotExist:
        return None


def lesson_progress(*, member: User, lesson: Lesson) -> LessonProgress | None:
    if not _authenticated(member):
        return None
    return LessonProgress.objects.filter(member=member, lesson=lesson).first()


def quiz_best_attempt(*, member: User, quiz: Quiz) -> QuizAttempt | None:
    if not _authenticated(member):
        return None
    return QuizAttempt.objects.filter(member=member, quiz=quiz).order_by("-passed", "-correct", "-created_at").first()


def quiz_passed(*, member: User, quiz: Quiz) -> bool:
    return QuizAttempt.objects.filter(member=member, quiz=quiz, passed=True).exists()


def course_completion(*, member: User, course: Course) -> CourseCompletion:
    lessons_total = Lesson.objects.filter(course=course).count()
    lessons_done = LessonProgress.objects.filter(
        member=member, lesson__course=course, completed_at__isnull=False
    ).count()
    quizzes_total = Quiz.objects.filter(lesson__course=course).count()
    quizzes_passed = (
        QuizAttempt.objects.filter(member=member, quiz__lesson__course=course, passed=True)
        .values("quiz_id").distinct().count()
    )
    return CourseCompletion(lessons_total, lessons_done, quizzes_total, quizzes_passed)


def certificate_entitled(*, member: User, course: Course, when: datetime | None = None) -> bool:
    when = when or timezone.now()
    enrollment = enrollment_for(member=member, course=course)
    if enrollment is None and not catalogue_selectors.member_has_course_access(member=member, course=course, when=when):
        return False
    return _benefit_or_owned(member=member, enrollment=enrollment, kind=Benefit.Kind.CERTIFICATES, when=when)


def member_certificate(*, member: User, course: Course) -> Certificate | None:
    if not _authenticated(member):
        return None
    return Certificate.objects.filter(member=member, course=course).first()


def certificate_by_code(*, code: str) -> Certificate:
    return Certificate.objects.select_related("member", "course").get(code=code)


def member_certificates(*, member: User) -> QuerySet[Certificate]:
    return Certificate.objects.filter(member=member).select_related("course").order_by("-issued_at")


def attachment_with_lesson(*, pk: int) -> LessonAttachment:
    return LessonAttachment.objects.select_related("lesson__course").get(
        pk=pk, lesson__course__is_published=True, lesson__course__is_generic=False
    )


@dataclass(frozen=True)
class CourseProgress:
    done: int
    total: int

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0


def course_progress(*, member: User, course: Course) -> CourseProgress:
    """Lessons completed out of the course's lessons (the progress bar on course and lesson pages)."""
    total = course.lessons.count()
    done = LessonProgress.objects.filter(member=member, lesson__course=course, completed_at__isnull=False).count()
    return CourseProgress(done=done, total=total)


def lesson_completed(*, member: User, lesson: Lesson) -> bool:
    return LessonProgress.objects.filter(member=member, lesson=lesson, completed_at__isnull=False).exists()
