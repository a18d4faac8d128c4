from __future__ import annotations

import pytest
from django.core import mail

from analytics.models import JobRun, MessageLog
from analytics.outreach.review_invites import review_invite_key, review_invites_create
from analytics.outreach.tasks import send_review_invites
from members.learning.progress import lesson_complete
from members.reviews.services import review_submit
from tests.members.factories import (
    CourseFactory,
    EnrollmentFactory,
    LessonFactory,
    UserFactory,
)


def _finish(member, course, capture):
    lesson = LessonFactory(course=course)
    EnrollmentFactory(member=member, course=course)
    with capture(execute=True):
        lesson_complete(member=member, lesson=lesson)


@pytest.mark.django_db
def test_a_finished_course_gets_one_invitation_even_when_the_job_runs_twice(django_capture_on_commit_callbacks):
    member = UserFactory(display_name="Finisher")
    course = CourseFactory(title="Data Basics")
    _finish(member, course, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        send_review_invites()
    with django_capture_on_commit_callbacks(execute=True):
        assert review_invites_create() == 0
    log = MessageLog.objects.get(dedupe_key=review_invite_key(member_id=member.pk, course_id=course.pk))
    assert log.kind == MessageLog.Kind.REVIEW_INVITE and log.status == MessageLog.Status.SENT
    assert len(mail.outbox) == 1 and "Data Basics" in mail.outbox[0].subject
    assert f"/courses/{course.slug}/reviews/" in mail.outbox[0].body
    assert JobRun.objects.filter(job="send_review_invites", status=JobRun.Status.SUCCEEDED).exists()


@pytest.mark.django_db
def test_no_invitation_for_unfinished_or_already_reviewed_courses(django_capture_on_commit_callbacks):
    member = UserFactory()
    done = CourseFactory()
    _finish(member, done, django_capture_on_commit_callbacks)
    review_submit(member=member, course=done, rating=5)
    started = CourseFactory()
    LessonFactory(course=started)
    EnrollmentFactory(member=member, course=started)  # enrolled, never finished
    with django_capture_on_commit_callbacks(execute=True):
        assert review_invites_create() == 0
    assert mail.outbox == []
