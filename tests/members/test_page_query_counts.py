"""Pinned query counts of the learner's pages (issue 19): the same number of queries whatever the data holds.

Each test measures the page once, adds more of what the page lists, and measures again: a count that grows with
the data (an N+1) fails the second pin even when the first one passes.
"""
from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from analytics.models import Event, Recommendation, RecommendationRun
from community.models import Comment, Post, Reaction
from members import pagecache
from members.models import Review
from tests.members.factories import (
    CourseFactory,
    EnrollmentFactory,
    LessonFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def _enrol(member, n):
    for _ in range(n):
        course = CourseFactory()
        for position in range(1, 4):
            LessonFactory(course=course, position=position)
        EnrollmentFactory(member=member, course=course)


def test_learner_home_query_count_is_constant(client, alice, django_assert_num_queries):
    _enrol(alice, 2)
    client.force_login(alice)
    client.get(reverse("members:home"))
    # Served by the front cache, before the session and the user are loaded: no query at all (the versions and the
    # session's marker sit in the shared state cache, LocMem here).
    with django_assert_num_queries(0):
        client.get(reverse("members:home"))
    # A miss: session, user, tiers (+ benefits), continue: enrollment, lessons, progress; membership card: live
    # (+ benefits), latest; header unread count; coupons; enrollments.
    pagecache.bump()
    with django_assert_num_queries(12):
        client.get(reverse("members:home"))
    _enrol(alice, 8)
    with django_assert_num_queries(12):
        response = client.get(reverse("members:home"))
    assert len(response.context["enrollments"]) == 6
    with django_assert_num_queries(0):
        client.get(reverse("members:home"))


def test_course_page_query_count_is_constant_in_reviews_and_lessons(client, alice, django_assert_num_queries):
    course = CourseFactory()
    LessonFactory(course=course, position=1)
    EnrollmentFactory(member=alice, course=course)
    client.force_login(alice)
    url = reverse("members:course_detail", args=[course.slug])

    def grow(n):
        start = course.lessons.count() + 1
        for position in range(start, start + n):
            LessonFactory(course=course, position=position)
        for _ in range(n):
            reviewer = UserFactory()
            EnrollmentFactory(member=reviewer, course=course)
            Review.objects.create(member=reviewer, course=course, rating=4, body="Clear and practical.")

    grow(2)
    client.get(url)
    with django_assert_num_queries(0):  # from the front cache: no session, no user
        client.get(url)
    pagecache.bump()
    with django_assert_num_queries(16):
        client.get(url)
    grow(10)
    with django_assert_num_queries(16):
        response = client.get(url)
    assert response.status_code == 200
    assert response.context["progress"].total == 13
    with django_assert_num_queries(0):
        client.get(url)


def test_recommendations_row_costs_fixed_queries_and_one_insert_for_the_impressions(
    client, alice, django_assert_num_queries, django_capture_on_commit_callbacks
):
    run = RecommendationRun.objects.create(as_of=timezone.now(), is_current=True)
    for rank in range(1, 9):
        Recommendation.objects.create(run=run, member=alice, course=CourseFactory(), rank=rank, score=1 / rank,
                                      reason="popular")
    client.force_login(alice)
    client.get(reverse("recs:row"), **HX)
    # A miss: session, user, owned ids, recommendations (course and reason course joined) — then the impressions.
    pagecache.bump()
    with django_capture_on_commit_callbacks(execute=False) as callbacks, django_assert_num_queries(4):
        response = client.get(reverse("recs:row"), **HX)
    assert response.status_code == 200 and len(callbacks) == 1
    # A hit: session and user, the same HTML, and the impressions are still recorded.
    with django_capture_on_commit_callbacks(execute=False) as hit_callbacks, django_assert_num_queries(2):
        hit = client.get(reverse("recs:row"), **HX)
    assert hit.content == response.content and len(hit_callbacks) == 1
    for callback in hit_callbacks:
        callback()
    before = Event.objects.filter(kind="recommendation_impression").count()
    with django_assert_num_queries(1):  # the four impressions go in one INSERT
        for callback in callbacks:
            callback()
    impressions = Event.objects.filter(kind="recommendation_impression").order_by("id")
    assert before == 4  # the hit's, recorded above
    assert impressions.count() == before + 4
    assert [e.properties["rank"] for e in impressions.reverse()[:4]][::-1] == [1, 2, 3, 4]


def test_popular_fallback_counts_enrollments_per_course(client, alice):
    """With no run, the row shows the most enrolled courses: the subquery counts each course's enrollments."""
    quiet, busy = CourseFactory(), CourseFactory()
    for _ in range(3):
        EnrollmentFactory(member=UserFactory(), course=busy)
    EnrollmentFactory(member=UserFactory(), course=quiet)
    client.force_login(alice)
    cards = client.get(reverse("recs:row")).context["cards"]
    assert [card.course.pk for card in cards[:2]] == [busy.pk, quiet.pk]
    assert cards[0].course.popularity == 3 and cards[1].course.popularity == 1


def test_feed_counts_ignore_hidden_comments_and_stay_right_with_both_relations(client, alice, bob):
    """Counts as subqueries: comments x reactions no longer multiply, hidden comments do not count."""
    post = Post.objects.create(author=bob, title="Hello", body="First post")
    for n in range(3):
        Comment.objects.create(post=post, author=alice, body=f"comment {n}")
    Comment.objects.create(post=post, author=alice, body="hidden", is_hidden=True)
    Reaction.objects.create(post=post, member=alice, kind=Reaction.Kind.LIKE)
    Reaction.objects.create(post=post, member=bob, kind=Reaction.Kind.LIKE)
    client.force_login(alice)
    row = client.get(reverse("community:feed")).context["page"].object_list[0]
    assert (row.comment_count, row.reaction_count, row.liked) == (3, 2, True)
