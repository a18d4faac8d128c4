"""The learner pages' cache (members.pagecache, issue 19): served from cache, yet a write shows at once, each
member sees only their own page and CSRF token, and each language its own page."""
from __future__ import annotations

import re

import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.middleware.csrf import _unmask_cipher_token
from django.test import Client, override_settings
from django.urls import reverse

from community.models import Post
from members import pagecache
from members.models import Course
from tests.members.factories import CourseFactory, EnrollmentFactory, LessonFactory

pytestmark = pytest.mark.django_db
TOKEN = re.compile(r'"X-CSRFToken": "([A-Za-z0-9]{64})"')


def _token(response) -> str:
    return TOKEN.search(response.content.decode()).group(1)


def _served_from_cache(response) -> bool:
    return response.context is None  # a hit returns the stored bytes, no template was rendered


def test_a_second_request_is_served_from_the_cache_with_the_same_content(client, alice):
    CourseFactory(title="Cached course")
    client.force_login(alice)
    first = client.get(reverse("members:course_list"))
    second = client.get(reverse("members:course_list"))
    assert not _served_from_cache(first) and _served_from_cache(second)
    assert second.status_code == 200 and "Cached course" in second.content.decode()
    # Byte for byte the same page once each carries its own CSRF token.
    assert first.content.replace(_token(first).encode(), b"T") == second.content.replace(_token(second).encode(), b"T")
    assert second["Content-Type"] == first["Content-Type"]


def test_a_purchase_shows_as_owned_at_once(client, alice):
    course = CourseFactory(price=49)
    LessonFactory(course=course, position=1)
    client.force_login(alice)
    url = reverse("members:course_detail", args=[course.slug])
    client.get(url)
    assert "Buy this course" in client.get(url).content.decode()  # cached, not owned yet
    response = client.post(reverse("members:checkout_course", args=[course.slug]),
                           {"payment_token": "local:ok", "action": "pay"})
    assert response.status_code == 302
    page = client.get(url).content.decode()
    assert "You own this course." in page and "Buy this course" not in page


def test_an_enrollment_written_outside_a_request_shows_at_once(client, alice):
    course = CourseFactory()
    client.force_login(alice)
    url = reverse("members:course_detail", args=[course.slug])
    client.get(url)
    client.get(url)
    EnrollmentFactory(member=alice, course=course)  # a webhook, a task, the admin: a model save
    assert "You own this course." in client.get(url).content.decode()


def test_a_course_edit_shows_at_once_on_the_catalogue_and_the_course_page(client, alice):
    course = CourseFactory(title="Old title")
    client.force_login(alice)
    for url in (reverse("members:course_list"), reverse("members:course_detail", args=[course.slug])):
        client.get(url)
        assert "Old title" in client.get(url).content.decode()
    course.title = "New title"
    course.save()
    for url in (reverse("members:course_list"), reverse("members:course_detail", args=[course.slug])):
        page = client.get(url).content.decode()
        assert "New title" in page and "Old title" not in page


def test_a_write_through_queryset_update_in_a_request_shows_at_once(client, alice, charlie):
    """Services write with QuerySet.update() (no signal): the write request itself bumps the version."""
    post = Post.objects.create(author=alice, title="Pin me", body="body")
    client.force_login(alice)
    client.get(reverse("community:feed"))
    assert "pinned" not in client.get(reverse("community:feed")).content.decode().lower()
    staff = Client()
    staff.force_login(charlie)
    staff.post(reverse("community:post_pin", args=[post.pk]))
    assert Post.objects.get(pk=post.pk).is_pinned
    response = client.get(reverse("community:feed"))
    assert not _served_from_cache(response)


def test_the_other_language_gets_its_own_page(client, alice):
    CourseFactory()
    client.force_login(alice)
    english = client.get(reverse("members:course_list")).content.decode()
    client.get(reverse("members:course_list"))
    client.cookies["django_language"] = "zh-hans"
    chinese = client.get(reverse("members:course_list")).content.decode()
    assert '<html lang="en">' in english and '<html lang="zh-hans">' in chinese
    client.cookies["django_language"] = "en"
    assert '<html lang="en">' in client.get(reverse("members:course_list")).content.decode()


@pytest.mark.parametrize("page", ["members:home", "members:course_list", "community:feed"])
def test_one_member_never_gets_another_members_page_or_csrf_token(alice, bob, page):
    CourseFactory()
    alice_client, bob_client = Client(), Client()
    alice_client.force_login(alice)
    bob_client.force_login(bob)
    alice_client.get(reverse(page))
    alice_page = alice_client.get(reverse(page))
    bob_page = bob_client.get(reverse(page))
    assert "Alice" in alice_page.content.decode() and "Alice" not in bob_page.content.decode()
    assert "Bob" in bob_page.content.decode()
    # Each token is its own session's: it unmasks to that client's CSRF cookie and not to the other's.
    alice_secret = alice_client.cookies["csrftoken"].value
    bob_secret = bob_client.cookies["csrftoken"].value
    assert _unmask_cipher_token(_token(alice_page)) == alice_secret != bob_secret
    assert _unmask_cipher_token(_token(bob_page)) == bob_secret
    # The token taken from a cached page is accepted by a CSRF-checked POST.
    checked = Client(enforce_csrf_checks=True)
    checked.force_login(bob)
    checked.get(reverse(page))
    cached = checked.get(reverse(page))
    assert _served_from_cache(cached)
    response = checked.post(reverse("set_language"), {"language": "en", "next": "/"},
                            HTTP_X_CSRFTOKEN=_token(cached))
    assert response.status_code == 302


def test_anonymous_visitors_each_get_their_own_csrf_token(db):
    CourseFactory()
    first, second = Client(), Client()
    first.get(reverse("members:course_list"))
    page = second.get(reverse("members:course_list"))
    assert _served_from_cache(page)
    assert _unmask_cipher_token(_token(page)) == second.cookies["csrftoken"].value


def test_a_page_with_a_message_to_show_is_not_served_from_or_stored_in_the_cache(client, alice):
    course = CourseFactory()
    EnrollmentFactory(member=alice, course=course)
    client.force_login(alice)
    client.get(reverse("members:course_detail", args=[course.slug]))
    # Checkout of an owned course: "You already own this course." and a redirect to the course page.
    response = client.get(reverse("members:checkout_course", args=[course.slug]), follow=True)
    assert "You already own this course." in response.content.decode()
    assert "You already own this course." not in client.get(reverse("members:course_detail",
                                                                    args=[course.slug])).content.decode()


def test_with_the_database_cache_as_shared_state_a_front_hit_costs_one_query(client, alice, django_assert_num_queries):
    """PostgreSQL without Redis keeps the versions and session markers in the database cache: one read per hit, no
    session, no user."""
    CourseFactory()
    database_cache = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache",
                                  "LOCATION": "django_cache"},
                      "pages": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "t-db"}}
    with override_settings(CACHES=database_cache):
        call_command("createcachetable", verbosity=0)
        client.force_login(alice)  # the session's marker goes to the database cache
        client.get(reverse("members:course_list"))
        with django_assert_num_queries(1):
            response = client.get(reverse("members:course_list"))
        assert _served_from_cache(response)
        caches["pages"].clear()


def test_behind_the_front_cache_a_hit_costs_the_session_the_user_and_the_version(
    client, alice, django_assert_num_queries
):
    """A second browser of the same member misses the front cache (its own session) but hits the page cache behind
    the view: the session, the user and the version (database cache)."""
    CourseFactory()
    database_cache = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache",
                                  "LOCATION": "django_cache"},
                      "pages": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "t-db"}}
    with override_settings(CACHES=database_cache):
        call_command("createcachetable", verbosity=0)
        client.force_login(alice)
        client.get(reverse("members:course_list"))
        other = Client()
        other.force_login(alice)
        # session, user, versions; then the front cache reads the session's marker to remember the page
        with django_assert_num_queries(4):
            response = other.get(reverse("members:course_list"))
        assert _served_from_cache(response)
        caches["pages"].clear()


def test_unpublishing_a_course_removes_it_from_the_cached_catalogue(client, alice):
    course = CourseFactory(title="Going away")
    client.force_login(alice)
    client.get(reverse("members:course_list"))
    assert "Going away" in client.get(reverse("members:course_list")).content.decode()
    Course.objects.filter(pk=course.pk).update(is_published=False)  # no signal, no request: only the TTL or a bump
    pagecache.bump()
    assert "Going away" not in client.get(reverse("members:course_list")).content.decode()


def test_a_learners_progress_makes_only_their_own_pages_stale(alice, bob):
    from members.models import LessonProgress

    course = CourseFactory()
    lesson = LessonFactory(course=course, position=1)
    EnrollmentFactory(member=alice, course=course)
    clients = {}
    for member in (alice, bob):
        clients[member.pk] = Client()
        clients[member.pk].force_login(member)
        clients[member.pk].get(reverse("members:home"))
    LessonProgress.objects.create(member=alice, lesson=lesson)
    assert not _served_from_cache(clients[alice.pk].get(reverse("members:home")))
    assert _served_from_cache(clients[bob.pk].get(reverse("members:home")))


def test_a_position_saved_by_the_player_bumps_only_that_members_version(alice, bob):
    course = CourseFactory(price=0)
    LessonFactory(course=course, position=1)
    EnrollmentFactory(member=alice, course=course)
    alice_client, bob_client = Client(), Client()
    alice_client.force_login(alice)
    bob_client.force_login(bob)
    alice_client.get(reverse("members:home"))
    bob_client.get(reverse("members:home"))
    before = pagecache.version()
    alice_client.post(reverse("learning:lesson_position", args=[course.slug, 1]), {"position": "30"})
    assert pagecache.version() == before  # everyone else's pages stay cached
    assert _served_from_cache(bob_client.get(reverse("members:home")))
    assert not _served_from_cache(alice_client.get(reverse("members:home")))


def test_logging_in_or_switching_language_leaves_everyone_elses_pages_cached(client, alice, bob):
    CourseFactory()
    bob.set_password("a-long-password-123")
    bob.save()
    alice_client = Client()
    alice_client.force_login(alice)
    alice_client.get(reverse("members:course_list"))
    before = pagecache.version()
    assert client.post(reverse("login"), {"username": bob.email, "password": "a-long-password-123"}).status_code == 302
    client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})
    client.post(reverse("logout"))
    assert pagecache.version() == before
    assert _served_from_cache(alice_client.get(reverse("members:course_list")))
