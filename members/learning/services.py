"""Writes for rich lessons: playback position, quiz attempts, certificates.

Progress events carry their quantity for the analytics: `properties={"quantity": N, "unit": "seconds"|"answers"}`.
"""
from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import formats, timezone
from django.utils.translation import gettext

from analytics.tracking import record_event
from members import exceptions
from members.learning import selectors
from members.models import Certificate, Course, Enrollment, Lesson, LessonProgress, Quiz, QuizAttempt, User

# A ping reports what was played since the last one (the player pings every 15 s and on pause); more than this in
# one ping is a client bug or a forged request, so it is capped rather than trusted.
MAX_SECONDS_PER_PING = 120
MAX_POSITION_SECONDS = 24 * 3600


def lesson_open_check(*, member: User, lesson: Lesson, when: datetime | None = None) -> selectors.LessonAccess:
    """Raise LessonLocked without access, LessonNotOpenYet while the drip schedule holds the lesson back."""
    access = selectors.lesson_access(member=member, lesson=lesson, when=when)
    if access.opens_at is not None:
        opens = formats.date_format(timezone.localtime(access.opens_at), "DATE_FORMAT")
        raise exceptions.LessonNotOpenYet(gettext("This lesson opens on %(date)s.") % {"date": opens})
    if not access.is_open:
        raise exceptions.LessonLocked()
    return access


def lesson_position_save(
    *, member: User, lesson: Lesson, position_seconds: int, watched_seconds: int, when: datetime | None = None
) -> LessonProgress:
    """Remember where the player stopped; add what was really played and record it as a quantity event."""
    when = when or timezone.now()
    lesson_open_check(member=member, lesson=lesson, when=when)
    position = max(0, min(int(position_seconds), MAX_POSITION_SECONDS))
    watched = max(0, min(int(watched_seconds), MAX_SECONDS_PER_PING))
    with transaction.atomic():
        progress, _ = LessonProgress.objects.get_or_create(member=member, lesson=lesson, defaults={"started_at": when})
        progress.position_seconds = position
        progress.seconds_watched += watched
        progress.save(update_fields=["position_seconds", "seconds_watched"])
        Enrollment.objects.filter(member=member, course_id=lesson.course_id).update(last_activity_at=when)
        if watched:
            record_event(member=member, kind="lesson_watched", obj=lesson, occurred_at=when, properties={
                "course_id": lesson.course_id, "quantity": watched, "unit": "seconds", "position": position,
            })
    return progress


def quiz_submit(
    *, member: User, quiz: Quiz, answers: Mapping[int, int], when: datetime | None = None
) -> QuizAttempt:
    """Grade one attempt (question id → choice id). Every question needs one of its own choices."""
    when = when or timezone.now()
    lesson = quiz.lesson
    lesson_open_check(member=member, lesson=lesson, when=when)
    questions = list(quiz.questions.prefetch_related("choices"))
    if not questions:
        raise exceptions.QuizInvalid()
    correct = 0
    for question in questions:
        choice_id = answers.get(question.pk)
        choice = next((c for c in question.choices.all() if c.pk == choice_id), None)
        if choice is None:
            raise exceptions.QuizInvalid()
        correct += choice.is_correct
    total = len(questions)
    passed = 100 * correct >= quiz.pass_mark * total
    with transaction.atomic():
        attempt = QuizAttempt.objects.create(
            member=member, quiz=quiz, correct=correct, total=total, passed=passed, created_at=when,
            answers={str(q.pk): answers[q.pk] for q in questions},
        )
        Enrollment.objects.filter(member=member, course_id=lesson.course_id).update(last_activity_at=when)
        record_event(member=member, kind="quiz_submitted", obj=quiz, occurred_at=when, properties={
            "course_id": lesson.course_id, "lesson_id": lesson.pk, "quantity": total, "unit": "answers",
            "correct": correct, "passed": passed,
        })
    if passed:
        certificate_issue_if_earned(member=member, course=lesson.course, when=when)
    return attempt


def certificate_issue_if_earned(*, member: User, course: Course, when: datetime | None = None) -> Certificate | None:
    """Issue the course certificate once every lesson is done and every quiz passed (idempotent).

    Called after each lesson completion and each passed quiz. The unique (member, course) constraint makes a second
    concurrent issue fail; the loser reads the winner's row.
    """
    when = when or timezone.now()
    existing = selectors.member_certificate(member=member, course=course)
    if existing is not None:
        return existing
    if not selectors.course_completion(member=member, course=course).is_complete:
        return None
    if not selectors.certificate_entitled(member=member, course=course, when=when):
        return None
    try:
        with transaction.atomic():
            certificate = Certificate.objects.create(
                member=member, course=course, code=secrets.token_urlsafe(16), issued_at=when
            )
            record_event(member=member, kind="certificate_issued", obj=course, occurred_at=when,
                         properties={"course_id": course.pk})
    except IntegrityError:
        return Certificate.objects.get(member=member, course=course)
    return certificate


def certificate_claim(*, member: User, course: Course, when: datetime | None = None) -> Certificate:
    """The certificate page's door: the certificate, issuing it now if it was earned (e.g. a quiz added later)."""
    certificate = certificate_issue_if_earned(member=member, course=course, when=when)
    if certificate is None:
        raise exceptions.CertificateNotEarned()
    return certificate
