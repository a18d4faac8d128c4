"""Fixtures for rich lessons: private media in a temporary folder, a course with a video lesson, entitled members."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from members.models import Benefit, Enrollment, LessonAttachment, LessonMediaKind, Quiz, QuizChoice, QuizQuestion
from tests.members.factories import (
    BenefitFactory,
    CourseFactory,
    EnrollmentFactory,
    LessonFactory,
    SubscriptionFactory,
    TierFactory,
)

# 1,000 bytes whose value at offset i is i % 251, so any slice can be checked against the expected bytes.
MEDIA_BYTES = bytes(i % 251 for i in range(1000))


@pytest.fixture(autouse=True)
def private_media(settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    return settings.PRIVATE_MEDIA_ROOT


@pytest.fixture
def course(db):
    return CourseFactory(title="Video course", slug="video-course")


@pytest.fixture
def video_lesson(course):
    lesson = LessonFactory(course=course, position=1, title="Watch this", media_kind=LessonMediaKind.VIDEO)
    lesson.media_file.save("clip.webm", ContentFile(MEDIA_BYTES), save=True)
    return lesson


@pytest.fixture
def attachment(video_lesson):
    item = LessonAttachment(lesson=video_lesson, title="Worksheet")
    item.file.save("worksheet.txt", ContentFile(b"fill me in\n"), save=True)
    return item


@pytest.fixture
def quiz(video_lesson):
    quiz = Quiz.objects.create(lesson=video_lesson, pass_mark=50)
    for n in range(2):
        question = QuizQuestion.objects.create(quiz=quiz, position=n, text=f"Question {n}")
        QuizChoice.objects.create(question=question, text="right", is_correct=True)
        QuizChoice.objects.create(question=question, text="wrong", is_correct=False)
    return quiz


def answers_for(quiz: Quiz, *, right: int) -> dict[int, int]:
    """question id → choice id, with the first `right` questions answered correctly."""
    result = {}
    for n, question in enumerate(quiz.questions.order_by("position")):
        result[question.pk] = question.choices.get(is_correct=n < right).pk
    return result


@pytest.fixture
def owner(alice, course):
    """alice bought the course."""
    EnrollmentFactory(member=alice, course=course, source=Enrollment.Source.PURCHASE,
                      enrolled_at=timezone.now() - timedelta(days=1))
    return alice


def subscribe(member, *benefits: str):
    tier = TierFactory()
    for kind in benefits:
        BenefitFactory(tier=tier, kind=kind)
    return SubscriptionFactory(member=member, tier=tier)


ALL = Benefit.Kind.ALL_COURSES
