"""The lesson page and "mark complete" (members/learning/views.py): who may open a lesson, progress recorded, the
htmx fragment and the redirect without JavaScript."""
from __future__ import annotations

import pytest
from django.urls import reverse

from analytics.models import Event
from members.models import LessonProgress
from tests.members.factories import CourseFactory, EnrollmentFactory, LessonFactory

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def test_lesson_locked_unless_access_and_preview_open(client, alice, bob):
    course = CourseFactory()
    preview = LessonFactory(course=course, position=1, is_preview=True, body="Preview text")
    locked = LessonFactory(course=course, position=2, body="Secret text")
    assert client.get(preview.get_absolute_url()).status_code == 200
    response = client.get(locked.get_absolute_url())
    assert response.status_code == 403 and b"Secret text" not in response.content
    EnrollmentFactory(member=alice, course=course)
    client.force_login(bob)
    assert client.get(locked.get_absolute_url()).status_code == 403
    client.force_login(alice)
    response = client.get(locked.get_absolute_url())
    assert response.status_code == 200 and b"Secret text" in response.content


def test_lesson_view_records_progress_and_complete_via_htmx(client, alice, django_capture_on_commit_callbacks):
    course = CourseFactory()
    first = LessonFactory(course=course, position=1)
    second = LessonFactory(course=course, position=2, title="The second")
    EnrollmentFactory(member=alice, course=course)
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        client.get(first.get_absolute_url())
    assert Event.objects.filter(member=alice, kind="lesson_viewed").exists()
    url = reverse("learning:lesson_complete", args=[course.slug, 1])
    response = client.post(url, **HX)
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert "Lesson completed" in body and 'aria-valuenow="50"' in body and "The second" in body
    assert LessonProgress.objects.get(member=alice, lesson=first).completed_at is not None
    # Without htmx: redirect back to the lesson.
    assert client.post(reverse("learning:lesson_complete", args=[course.slug, 2])).status_code == 302
    assert second.pk in set(LessonProgress.objects.filter(completed_at__isnull=False).values_list("lesson_id", flat=True))


def test_lesson_complete_refused_for_other_member(client, bob):
    course = CourseFactory()
    LessonFactory(course=course, position=1)
    client.force_login(bob)
    assert client.post(reverse("learning:lesson_complete", args=[course.slug, 1]), **HX).status_code == 403
    assert not LessonProgress.objects.exists()


def test_lesson_complete_requires_login(client):
    course = CourseFactory()
    LessonFactory(course=course, position=1)
    assert client.post(reverse("learning:lesson_complete", args=[course.slug, 1])).status_code == 302
