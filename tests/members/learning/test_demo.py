"""The demo platform shows rich lessons: every lesson that promises a video has one, worksheets, quizzes, drip."""
from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from members.models import Lesson, LessonAttachment, LessonMediaKind, Quiz


@pytest.mark.django_db
def test_the_demo_gives_lessons_media_worksheets_quizzes_and_a_drip_schedule(client):
    call_command("seed_demo", "--members", "20", "--months", "1", "--seed", "5", "--today", "2026-06-15",
                 "--no-progress", stdout=StringIO())
    lessons = Lesson.objects.all()
    assert not lessons.filter(body__contains="video", media_kind=LessonMediaKind.NONE).exists()
    assert not lessons.filter(body__regex=r"\d+-minute video").exists()  # the clip is short; the text says so
    assert not lessons.filter(body_zh_hans__regex=r"\d+ 分钟的视频").exists()  # in Chinese too
    assert lessons.filter(body_zh_hans__contains="观看这段短视频", media_kind=LessonMediaKind.VIDEO).exists()
    assert not lessons.filter(media_kind=LessonMediaKind.AUDIO, body_zh_hans__contains="观看").exists()
    assert lessons.filter(media_kind=LessonMediaKind.AUDIO).exists()
    assert not lessons.filter(media_kind=LessonMediaKind.AUDIO, body__contains="Watch").exists()
    assert lessons.filter(drip_days__gt=0).exists()
    assert LessonAttachment.objects.count() == Quiz.objects.count() == lessons.values("course").distinct().count()
    assert all(quiz.questions.count() == 3 for quiz in Quiz.objects.all())
    assert all(q.choices.filter(is_correct=True).count() == 1 for quiz in Quiz.objects.all()
               for q in quiz.questions.all())
    # The media really plays from storage: a preview lesson's clip answers a range request for anyone.
    preview = lessons.filter(is_preview=True, media_kind=LessonMediaKind.VIDEO).select_related("course").first()
    url = reverse("learning:lesson_media", args=[preview.course.slug, preview.position])
    response = client.get(url, headers={"Range": "bytes=0-3"})
    assert response.status_code == 206
    assert b"".join(response.streaming_content) == b"\x1aE\xdf\xa3"  # the WebM (EBML) signature
