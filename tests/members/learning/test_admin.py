"""Admin: a lesson's media, drip days, attachments and quiz are edited there; certificates are read-only."""
from __future__ import annotations

from django.urls import reverse

from members.learning import progress
from members.models import Certificate


def test_lesson_admin_shows_media_drip_attachments_and_quiz(staff_client, video_lesson, attachment, quiz):
    page = staff_client.get(reverse("admin:members_lesson_change", args=[video_lesson.pk])).content.decode()
    for field in ("media_kind", "media_file", "media_url", "drip_days", "attachments-0-title", "quiz-0-pass_mark"):
        assert field in page, field
    assert reverse("admin:members_quiz_change", args=[quiz.pk]) in page
    assert video_lesson.media_file.name in page and attachment.file.name in page  # named, not linked
    quiz_page = staff_client.get(reverse("admin:members_quiz_change", args=[quiz.pk]))
    assert quiz_page.status_code == 200 and "Question 0" in quiz_page.content.decode()
    question = quiz.questions.first()
    choices = staff_client.get(reverse("admin:members_quizquestion_change", args=[question.pk]))
    assert choices.status_code == 200 and "is_correct" in choices.content.decode()


def test_certificates_are_read_only_in_admin(staff_client, owner, video_lesson):
    progress.lesson_complete(member=owner, lesson=video_lesson)
    certificate = Certificate.objects.get()
    assert staff_client.get(reverse("admin:members_certificate_changelist")).status_code == 200
    page = staff_client.get(reverse("admin:members_certificate_change", args=[certificate.pk]))
    assert page.status_code == 200
    assert certificate.get_absolute_url() in page.content.decode()
    assert 'name="code"' not in page.content.decode()
    assert staff_client.get(reverse("admin:members_certificate_add")).status_code == 403
