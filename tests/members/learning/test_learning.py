"""Drip schedule, attachments permission, playback position, quizzes and certificates."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from analytics.models import Event
from members import exceptions
from members.learning import progress as learning_progress
from members.learning import selectors
from members.learning import services as learning_services
from members.models import Benefit, Certificate, Enrollment, LessonAttachment, LessonProgress, QuizAttempt
from tests.members.factories import EnrollmentFactory, LessonFactory
from tests.members.learning.conftest import ALL, answers_for, subscribe

# --------------------------------------------------------------------------------------------------------------
# Drip schedule


@pytest.fixture
def dripped(course, owner):
    return LessonFactory(course=course, position=2, title="Week two", drip_days=7)


def test_a_dripped_lesson_is_locked_until_n_days_after_enrolment(client, owner, dripped):
    client.force_login(owner)
    response = client.get(dripped.get_absolute_url())
    assert response.status_code == 403
    enrolled = Enrollment.objects.get(member=owner, course=dripped.course).enrolled_at
    opens = timezone.localtime(enrolled + timedelta(days=7))
    assert "drip-locked" in response.content.decode()
    assert str(opens.year) in response.content.decode()
    assert dripped.body not in response.content.decode()
    with pytest.raises(exceptions.LessonNotOpenYet):
        learning_progress.lesson_complete(member=owner, lesson=dripped)
    # Eight days after enrolment it is open.
    later = enrolled + timedelta(days=8)
    assert learning_progress.lesson_complete(member=owner, lesson=dripped, when=later).completed_at == later


def test_course_page_shows_when_a_locked_lesson_opens(client, owner, dripped):
    client.force_login(owner)
    page = client.get(dripped.course.get_absolute_url()).content.decode()
    assert "lesson-opens" in page


def test_a_tier_member_who_has_not_started_sees_the_drip_counted_from_today(bob, dripped):
    subscribe(bob, ALL)
    access = selectors.lesson_access(member=bob, lesson=dripped)
    assert access.course_access and access.drip_locked
    assert access.opens_at > timezone.now() + timedelta(days=6)


def test_the_api_says_when_a_lesson_opens(client, owner, video_lesson, dripped):
    client.force_login(owner)
    data = client.get(reverse("members-api:course-schedule", args=[dripped.course.slug])).json()
    by_position = {row["position"]: row for row in data["lessons"]}
    assert by_position[1]["is_open"] is True and by_position[1]["opens_at"] is None
    assert by_position[1]["media_kind"] == "video"
    assert by_position[2]["is_open"] is False and by_position[2]["opens_at"] is not None
    assert by_position[2]["drip_days"] == 7
    catalogue = client.get(reverse("members-api:course-detail", args=[dripped.course.slug])).json()
    assert {row["drip_days"] for row in catalogue["lessons"]} == {0, 7}


def test_the_api_schedule_needs_login_and_a_published_course(client, course):
    assert client.get(reverse("members-api:course-schedule", args=[course.slug])).status_code in (401, 403)


# --------------------------------------------------------------------------------------------------------------
# Attachments


def download_url(attachment: LessonAttachment) -> str:
    return reverse("learning:attachment_download", args=[attachment.pk])


def test_a_buyer_downloads_attachments(client, owner, attachment):
    client.force_login(owner)
    response = client.get(download_url(attachment))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"fill me in\n"
    assert response["Content-Disposition"].startswith("attachment;")


def test_attachments_are_refused_to_others_even_by_guessed_url(client, bob, attachment):
    assert client.get(download_url(attachment)).status_code == 403
    client.force_login(bob)
    assert client.get(download_url(attachment)).status_code == 403
    assert client.get(reverse("learning:attachment_download", args=[attachment.pk + 999])).status_code == 404


def test_a_tier_member_needs_the_downloads_benefit(client, bob, attachment):
    subscribe(bob, ALL)
    client.force_login(bob)
    page = client.get(attachment.lesson.get_absolute_url()).content.decode()
    assert download_url(attachment) not in page
    assert client.get(download_url(attachment)).status_code == 403
    subscription = bob.subscriptions.get()
    subscription.tier.benefits.create(kind=Benefit.Kind.DOWNLOADS)
    assert client.get(download_url(attachment)).status_code == 200
    assert download_url(attachment) in client.get(attachment.lesson.get_absolute_url()).content.decode()


def test_attachments_of_a_dripped_lesson_wait_for_its_date(client, owner, course):
    lesson = LessonFactory(course=course, position=3, drip_days=3)
    item = LessonAttachment(lesson=lesson, title="Later")
    item.file.save("later.txt", ContentFile(b"x"), save=True)
    client.force_login(owner)
    assert client.get(download_url(item)).status_code == 403


# --------------------------------------------------------------------------------------------------------------
# Playback position


def position_url(lesson) -> str:
    return reverse("learning:lesson_position", args=[lesson.course.slug, lesson.position])


def test_the_player_ping_saves_the_position_and_records_seconds_watched(
    client, owner, video_lesson, django_capture_on_commit_callbacks
):
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(position_url(video_lesson), {"position": "42.7", "watched": "15"})
    assert response.status_code == 200
    progress = LessonProgress.objects.get(member=owner, lesson=video_lesson)
    assert (progress.position_seconds, progress.seconds_watched) == (42, 15)
    event = Event.objects.get(kind="lesson_watched")
    assert event.properties["quantity"] == 15 and event.properties["unit"] == "seconds"
    # The lesson page resumes there.
    page = client.get(video_lesson.get_absolute_url()).content.decode()
    assert 'data-resume-at="42"' in page
    assert reverse("learning:lesson_media", args=[video_lesson.course.slug, 1]) in page


def test_a_forged_ping_is_capped(client, owner, video_lesson):
    client.force_login(owner)
    client.post(position_url(video_lesson), {"position": "-5", "watched": "99999"})
    progress = LessonProgress.objects.get(member=owner, lesson=video_lesson)
    assert progress.position_seconds == 0
    assert progress.seconds_watched == learning_services.MAX_SECONDS_PER_PING
    assert client.post(position_url(video_lesson), {"position": "abc"}).status_code == 400
    assert client.post(position_url(video_lesson), {"position": "1e999"}).status_code == 400


def test_the_ping_is_refused_without_access(client, bob, video_lesson):
    client.force_login(bob)
    assert client.post(position_url(video_lesson), {"position": "3", "watched": "3"}).status_code == 403
    assert not LessonProgress.objects.filter(member=bob).exists()
    client.logout()
    assert client.post(position_url(video_lesson), {"position": "3"}).status_code == 302


# --------------------------------------------------------------------------------------------------------------
# Quizzes


def quiz_url(quiz) -> str:
    return reverse("learning:quiz_submit", args=[quiz.lesson.course.slug, quiz.lesson.position])


def form(answers: dict[int, int]) -> dict[str, str]:
    return {f"q{q}": str(c) for q, c in answers.items()}


def test_a_quiz_below_the_pass_mark_fails_and_at_it_passes(owner, quiz, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        failed = learning_services.quiz_submit(member=owner, quiz=quiz, answers=answers_for(quiz, right=0))
        passed = learning_services.quiz_submit(member=owner, quiz=quiz, answers=answers_for(quiz, right=1))
    assert (failed.passed, failed.correct) == (False, 0)
    assert (passed.passed, passed.correct, passed.percent) == (True, 1, 50)  # pass mark 50%
    events = list(Event.objects.filter(kind="quiz_submitted").order_by("id"))
    assert [e.properties["quantity"] for e in events] == [2, 2]
    assert {e.properties["unit"] for e in events} == {"answers"}
    assert [e.properties["passed"] for e in events] == [False, True]


def test_a_quiz_needs_an_answer_to_every_question_from_its_own_choices(owner, quiz):
    answers = answers_for(quiz, right=2)
    first = next(iter(answers))
    with pytest.raises(exceptions.QuizInvalid):
        learning_services.quiz_submit(member=owner, quiz=quiz, answers={first: answers[first]})
    other_choice = list(answers.values())[1]
    with pytest.raises(exceptions.QuizInvalid):
        learning_services.quiz_submit(member=owner, quiz=quiz, answers=dict.fromkeys(answers, other_choice))
    assert not QuizAttempt.objects.exists()


def test_quiz_page_and_htmx_fragment(client, owner, quiz):
    client.force_login(owner)
    page = client.get(quiz.lesson.get_absolute_url()).content.decode()
    assert 'id="quiz"' in page and "Question 0" in page
    response = client.post(quiz_url(quiz), form(answers_for(quiz, right=0)), headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "Not passed yet" in response.content.decode() and "<html" not in response.content.decode()
    response = client.post(quiz_url(quiz), form(answers_for(quiz, right=2)))
    assert response.status_code == 302
    assert "Passed: 2 of 2" in client.get(quiz.lesson.get_absolute_url()).content.decode()


def test_the_quiz_is_refused_without_access(client, bob, quiz):
    client.force_login(bob)
    assert client.post(quiz_url(quiz), form(answers_for(quiz, right=2))).status_code == 403
    assert not QuizAttempt.objects.exists()


# --------------------------------------------------------------------------------------------------------------
# Certificates


@pytest.fixture
def two_lessons(course, video_lesson):
    return [video_lesson, LessonFactory(course=course, position=2, title="Second")]


def test_a_certificate_needs_every_lesson_and_every_quiz(owner, two_lessons, quiz):
    first, second = two_lessons
    learning_progress.lesson_complete(member=owner, lesson=first)
    assert not Certificate.objects.exists()
    learning_progress.lesson_complete(member=owner, lesson=second)
    assert not Certificate.objects.exists()  # the quiz is not passed yet
    learning_services.quiz_submit(member=owner, quiz=quiz, answers=answers_for(quiz, right=0))
    assert not Certificate.objects.exists()
    learning_services.quiz_submit(member=owner, quiz=quiz, answers=answers_for(quiz, right=2))
    certificate = Certificate.objects.get(member=owner, course=first.course)
    assert len(certificate.code) >= 20
    # Idempotent: passing again or completing again issues nothing new.
    learning_services.quiz_submit(member=owner, quiz=quiz, answers=answers_for(quiz, right=2))
    learning_progress.lesson_complete(member=owner, lesson=second)
    assert Certificate.objects.count() == 1


def test_anyone_can_verify_a_certificate_but_not_guess_one(client, owner, two_lessons):
    for lesson in two_lessons:
        learning_progress.lesson_complete(member=owner, lesson=lesson)
    certificate = Certificate.objects.get()
    response = client.get(certificate.get_absolute_url())  # anonymous
    assert response.status_code == 200
    page = response.content.decode()
    assert "certificate-verified" in page and owner.display_name in page and "Video course" in page
    assert client.get(reverse("learning:certificate_verify", args=["A" * 22])).status_code == 404
    pdf = client.get(reverse("learning:certificate_pdf", args=[certificate.code]))
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")


def test_my_certificate_page_says_what_is_missing_then_redirects(client, owner, two_lessons):
    client.force_login(owner)
    url = reverse("learning:certificate_mine", args=[two_lessons[0].course.slug])
    response = client.get(url)
    assert response.status_code == 403
    assert "0 of 2 lessons done" in response.content.decode()
    for lesson in two_lessons:
        learning_progress.lesson_complete(member=owner, lesson=lesson)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == Certificate.objects.get().get_absolute_url()
    lesson_page = client.get(two_lessons[1].get_absolute_url()).content.decode()
    assert "certificate-link" in lesson_page


def test_a_tier_member_needs_the_certificates_benefit(bob, course, video_lesson):
    subscription = subscribe(bob, ALL)
    learning_progress.lesson_complete(member=bob, lesson=video_lesson)
    assert not Certificate.objects.exists()
    subscription.tier.benefits.create(kind=Benefit.Kind.CERTIFICATES)
    # Claiming later issues it (a benefit added after completion is honoured).
    assert learning_services.certificate_claim(member=bob, course=course).member == bob


def test_a_pdf_in_chinese_renders(client, owner, two_lessons):
    course = two_lessons[0].course
    course.title_zh = "视频课程"
    course.save()
    for lesson in two_lessons:
        learning_progress.lesson_complete(member=owner, lesson=lesson)
    certificate = Certificate.objects.get()
    response = client.get(reverse("learning:certificate_pdf", args=[certificate.code]), HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 200 and response.content.startswith(b"%PDF")


def test_enrolment_from_membership_counts_only_with_the_benefit(bob, course, video_lesson):
    EnrollmentFactory(member=bob, course=course, source=Enrollment.Source.MEMBERSHIP)
    assert not selectors.lesson_access(member=bob, lesson=video_lesson).can_download


def test_rich_lesson_words_read_in_chinese(client, owner, quiz, course):
    LessonFactory(course=course, position=2, drip_days=5)
    owner.preferred_language = "zh-hans"
    owner.save()
    client.force_login(owner)
    page = client.get(quiz.lesson.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "测验" in page and "及格线" in page and "提交答案" in page
    locked = client.get(reverse("learning:lesson_detail", args=[course.slug, 2]), HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert "本课将于" in locked.content.decode()


def test_deleting_the_account_withdraws_the_certificate(client, owner, two_lessons):
    from members.privacy.services import member_delete

    for lesson in two_lessons:
        learning_progress.lesson_complete(member=owner, lesson=lesson)
    url = Certificate.objects.get().get_absolute_url()
    member_delete(member=owner, actor=owner)
    assert client.get(url).status_code == 404


def test_the_api_saves_the_position_and_refuses_a_dripped_lesson(client, owner, video_lesson, dripped):
    client.force_login(owner)
    url = reverse("members-api:lesson-position", args=[video_lesson.pk])
    response = client.post(url, {"position": 30, "watched": 12}, content_type="application/json")
    assert response.status_code == 200
    assert response.json() == {"position": 30, "seconds_watched": 12}
    locked = client.post(reverse("members-api:lesson-position", args=[dripped.pk]), {"position": 1},
                         content_type="application/json")
    assert locked.status_code == 400 and locked.json()["error"]["code"] == "lesson_not_open_yet"
    viewed = client.post(reverse("members-api:lesson-view", args=[dripped.pk]))
    assert viewed.status_code == 400
    assert client.post(url, {"position": -1}, content_type="application/json").status_code == 400


def test_a_tier_members_drip_clock_starts_when_they_first_open_the_course(bob, course, video_lesson, dripped):
    subscribe(bob, ALL)
    opened = timezone.now() - timedelta(days=8)
    learning_progress.lesson_view(member=bob, lesson=video_lesson, when=opened)
    access = selectors.lesson_access(member=bob, lesson=dripped)
    assert access.is_open  # 7 drip days counted from the first visit 8 days ago, not from today


def test_an_incomplete_quiz_via_htmx_shows_the_error_in_place(client, owner, quiz):
    client.force_login(owner)
    response = client.post(quiz_url(quiz), {}, headers={"HX-Request": "true"})
    assert response.status_code == 200  # htmx swaps 2xx only
    assert "Answer every question" in response.content.decode()
    assert client.post(quiz_url(quiz), {}).status_code == 302  # plain post: back to the page with a message
