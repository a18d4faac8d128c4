from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.db.models import Avg
from django.urls import reverse

from members.exceptions import MembersError
from members.models import Review, ReviewHelpful
from members.reviews.services import InvalidRating, ReviewNotAllowed, review_hide, review_mark_helpful, review_submit
from tests.members.factories import (
    CourseFactory,
    EnrollmentFactory,
    StaffFactory,
    UserFactory,
)


@pytest.mark.django_db
def test_only_enrolled_members_may_review(alice):
    course = CourseFactory()
    with pytest.raises(ReviewNotAllowed):
        review_submit(member=alice, course=course, rating=5)
    assert not Review.objects.exists()
    EnrollmentFactory(member=alice, course=course)
    review = review_submit(member=alice, course=course, rating=5, body="Great")
    assert review.rating == 5


@pytest.mark.django_db
def test_it_rejects_ratings_outside_one_to_five(alice):
    course = CourseFactory()
    EnrollmentFactory(member=alice, course=course)
    for bad in (0, 6, "x"):
        with pytest.raises(InvalidRating):
            review_submit(member=alice, course=course, rating=bad)


@pytest.mark.django_db
def test_a_second_submit_edits_the_same_review(alice, django_capture_on_commit_callbacks):
    course = CourseFactory()
    EnrollmentFactory(member=alice, course=course)
    with django_capture_on_commit_callbacks(execute=True):
        first = review_submit(member=alice, course=course, rating=2, body="meh")
        second = review_submit(member=alice, course=course, rating=4, body="grew on me")
    assert first.pk == second.pk
    assert Review.objects.get().rating == 4
    from analytics.models import Event

    assert list(Event.objects.order_by("pk").values_list("kind", flat=True)) == ["course_reviewed", "course_review_updated"]


@pytest.mark.django_db
def test_hidden_reviews_vanish_from_averages(alice, bob, charlie):
    course = CourseFactory()
    for m in (alice, bob):
        EnrollmentFactory(member=m, course=course)
    review_submit(member=alice, course=course, rating=5)
    bad = review_submit(member=bob, course=course, rating=1)
    from members.reviews.selectors import course_rating_summary

    assert course_rating_summary(course=course).average == 3.0
    review_hide(review=bad, actor=charlie)
    summary = course_rating_summary(course=course)
    assert summary.average == 5.0
    assert summary.count == 1
    assert summary.distribution[1] == 0 and summary.distribution[5] == 1
    assert Review.objects.filter(course=course, is_hidden=False).aggregate(a=Avg("rating"))["a"] == 5.0


@pytest.mark.django_db
def test_helpful_is_counted_once_per_member_and_not_for_oneself(alice, bob):
    course = CourseFactory()
    EnrollmentFactory(member=alice, course=course)
    review = review_submit(member=alice, course=course, rating=4)
    assert review_mark_helpful(review=review, member=bob) is True
    assert review_mark_helpful(review=review, member=bob) is False
    with pytest.raises(MembersError):
        review_mark_helpful(review=review, member=alice)
    review.refresh_from_db()
    assert review.helpful_count == 1 == ReviewHelpful.objects.count()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_submits_yield_one_review():
    member = UserFactory()
    course = CourseFactory()
    EnrollmentFactory(member=member, course=course)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def submit(rating: int) -> None:
        try:
            barrier.wait()
            review_submit(member=member, course=course, rating=rating, body=f"take {rating}")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(1 + i % 5,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert Review.objects.filter(member=member, course=course).count() == 1


@pytest.mark.django_db
def test_staff_hide_is_audited(alice):
    staff = StaffFactory()
    course = CourseFactory()
    EnrollmentFactory(member=alice, course=course)
    review = review_submit(member=alice, course=course, rating=3)
    review_hide(review=review, actor=staff)
    from members.models import AuditLog

    log = AuditLog.objects.get(action="review_hidden")
    assert log.actor == staff and log.target_member_id == alice.pk


# ---- pages



@pytest.mark.django_db
def test_reviews_page_and_htmx_fragment(alice_client, alice, bob):
    course = CourseFactory()
    EnrollmentFactory(member=bob, course=course)
    review_submit(member=bob, course=course, rating=4, body="Solid material")
    url = reverse("members:course_reviews", args=[course.slug])
    page = alice_client.get(url)
    assert page.status_code == 200 and b"<html" in page.content.lower() and b"Solid material" in page.content
    fragment = alice_client.get(url, HTTP_HX_REQUEST="true")
    assert b"<html" not in fragment.content.lower() and b'id="reviews"' in fragment.content
    # Alice is not enrolled: no form, and a forged POST is refused.
    assert b"review-form" not in page.content
    refused = alice_client.post(url, {"rating": "5"})
    assert refused.status_code == 400 and not Review.objects.filter(member=alice).exists()


@pytest.mark.django_db
def test_enrolled_member_submits_and_marks_helpful_via_htmx(alice_client, alice, bob):
    course = CourseFactory()
    EnrollmentFactory(member=alice, course=course)
    EnrollmentFactory(member=bob, course=course)
    bobs = review_submit(member=bob, course=course, rating=2)
    url = reverse("members:course_reviews", args=[course.slug])
    response = alice_client.post(url, {"rating": "5", "body": "Loved it"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and b"Loved it" in response.content
    assert Review.objects.get(member=alice).rating == 5
    helpful = alice_client.post(reverse("members:review_helpful", args=[bobs.pk]), HTTP_HX_REQUEST="true")
    assert helpful.status_code == 200 and b"(1)" in helpful.content
    bobs.refresh_from_db()
    assert bobs.helpful_count == 1


@pytest.mark.django_db
def test_course_page_partial_renders_with_fixed_queries(rf, alice, django_assert_max_num_queries):
    from django.template.loader import render_to_string

    course = CourseFactory()
    for _ in range(12):
        m = UserFactory()
        EnrollmentFactory(member=m, course=course)
        review_submit(member=m, course=course, rating=3, body="ok")
    request = rf.get("/")
    request.user = alice
    request.htmx = False
    with django_assert_max_num_queries(5):
        html = render_to_string("members/reviews/_reviews.html", {"course": course, "request": request}, request=request)
    assert "3.0" in html and html.count('class="review"') == 10


@pytest.mark.django_db
def test_demo_seed_adds_reviews_and_referrals():
    from django.core.management import call_command
    from django.utils import timezone

    from members.models import Referral

    members = [UserFactory() for _ in range(30)]
    courses = [CourseFactory() for _ in range(3)]
    for m in members:
        for c in courses:
            EnrollmentFactory(member=m, course=c, completed_at=timezone.now())
    call_command("seed_reviews", "--seed", "3")
    n = Review.objects.count()
    assert 20 < n < 90 and all(1 <= r <= 5 for r in Review.objects.values_list("rating", flat=True))
    call_command("seed_reviews", "--if-empty")
    assert Review.objects.count() == n
    from members.demo.reviews import seed_reviews_and_referrals

    result = seed_reviews_and_referrals(seed=4, referral_share=1.0)
    assert result.referrals > 0 and Referral.objects.filter(status=Referral.Status.SIGNED_UP).exists()
