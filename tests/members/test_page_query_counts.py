"""Pinned query counts of the learner's pages (issue 19): the same number of queries whatever the data holds.

Each test measures the page once, adds more of what the page lists, and measures again: a count that grows with
the data (an N+1) fails the second pin even when the first one passes.
"""
from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from analytics.models import Event, RecommendationRun
from analytics.recommendations import impressions as row_impressions
from community.models import Comment, Post, Reaction
from members import pagecache
from members.models import Review
from tests.analytics.factories import recommendation_set
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


def test_recommendations_row_costs_fixed_queries_and_records_impressions_once_per_window(
    client, alice, django_assert_num_queries, django_capture_on_commit_callbacks
):
    """Impressions are counted once per member, card set and window (RECOMMENDATION_IMPRESSION_WINDOW_SECONDS): the
    marker is read with the pages versions, so a render inside the window costs no query and no write."""
    run = RecommendationRun.objects.create(as_of=timezone.now(), is_current=True)
    recommendation_set(run=run, member=alice, items=[(CourseFactory(), 1 / rank, "popular") for rank in range(1, 9)])
    client.force_login(alice)
    client.get("/")  # the session saved once (its page-cache marker) before measuring
    # A miss: session, user, owned ids, the member's recommendation set, its courses — then the impressions.
    with django_capture_on_commit_callbacks(execute=False) as callbacks, django_assert_num_queries(5):
        response = client.get(reverse("recs:row"), **HX)
    assert response.status_code == 200 and len(callbacks) == 1
    with django_assert_num_queries(1):  # the four impressions go in one INSERT
        for callback in callbacks:
            callback()
    impressions = Event.objects.filter(member=alice, kind="recommendation_impression").order_by("id")
    assert [e.properties["rank"] for e in impressions.all()] == [1, 2, 3, 4]
    # The same session again, inside the window: the front of the page cache serves it, no query, nothing recorded.
    with django_capture_on_commit_callbacks(execute=True) as hit_callbacks, django_assert_num_queries(0):
        hit = client.get(reverse("recs:row"), **HX)
    assert hit.content == response.content and hit_callbacks == []
    # Another page written (the pages version bumped), same cards: rendered again, still not recorded again.
    pagecache.bump()
    with django_capture_on_commit_callbacks(execute=True) as callbacks, django_assert_num_queries(5):
        assert client.get(reverse("recs:row"), **HX).content == response.content
    assert callbacks == []
    # The window over (its marker expired): the cached row is served (session and user) and records once more.
    pagecache.state().delete(row_impressions.marker_key(alice.pk))
    with django_capture_on_commit_callbacks(execute=True) as callbacks, django_assert_num_queries(2):
        client.get(reverse("recs:row"), **HX)
    assert len(callbacks) == 1 and impressions.count() == 8
    with django_assert_num_queries(0):
        client.get(reverse("recs:row"), **HX)
    assert impressions.count() == 8


def test_recommendations_row_with_a_window_of_zero_records_every_render(
    client, alice, settings, django_assert_num_queries, django_capture_on_commit_callbacks
):
    settings.RECOMMENDATION_IMPRESSION_WINDOW_SECONDS = 0
    run = RecommendationRun.objects.create(as_of=timezone.now(), is_current=True)
    recommendation_set(run=run, member=alice, items=[(CourseFactory(), 1 / rank, "popular") for rank in range(1, 4)])
    client.force_login(alice)
    client.get("/")
    with django_assert_num_queries(6), django_capture_on_commit_callbacks(execute=True):  # the miss, then the INSERT
        client.get(reverse("recs:row"), **HX)
    # Each later render goes through the stack (never the front) and records: session, user, INSERT.
    for _ in range(2):
        with django_assert_num_queries(3), django_capture_on_commit_callbacks(execute=True):
            client.get(reverse("recs:row"), **HX)
    assert Event.objects.filter(member=alice, kind="recommendation_impression").count() == 9


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
