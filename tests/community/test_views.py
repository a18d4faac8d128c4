"""Community pages: feed scopes, posting, comments and replies, reactions via htmx, notifications, permissions."""
from __future__ import annotations

import pytest
from django.urls import reverse

from community import services
from community.models import Comment, Follow, Notification, Post, Reaction
from members import pagecache
from tests.community.factories import CommentFactory, PostFactory
from tests.members.factories import CourseFactory, UserFactory

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def test_feed_full_and_fragment(client):
    PostFactory(title="Hello world")
    full = client.get(reverse("community:feed"))
    assert full.status_code == 200 and b"<html" in full.content and b"Hello world" in full.content
    fragment = client.get(reverse("community:feed"), **HX)
    assert b"<html" not in fragment.content and b'id="posts"' in fragment.content and b"Hello world" in fragment.content


def test_feed_by_course_and_following(client, alice, bob):
    course = CourseFactory(title="Stats")
    PostFactory(title="About stats", course=course)
    PostFactory(title="By bob", author=bob)
    PostFactory(title="Other")
    body = client.get(reverse("community:feed"), {"course": course.pk}).content.decode()
    assert "About stats" in body and "Other" not in body
    Follow.objects.create(follower=alice, followed=bob)
    client.force_login(alice)
    body = client.get(reverse("community:feed"), {"scope": "following"}).content.decode()
    assert "By bob" in body and "Other" not in body


def test_feed_query_count_is_constant(client, alice, django_assert_num_queries):
    for _ in range(12):
        post = PostFactory()
        CommentFactory(post=post)
    client.force_login(alice)
    client.get(reverse("community:feed"))
    with django_assert_num_queries(0):  # from the front cache: no session, no user
        client.get(reverse("community:feed"))
    pagecache.bump()
    # session, user, count, one page of posts with counts annotated, unread count in the header, and the
    # course choices of the "write a post" form.
    with django_assert_num_queries(6):
        response = client.get(reverse("community:feed"))
    assert len(response.context["page"].object_list) == 12


def test_hidden_posts_only_for_staff(client, alice, charlie):
    post = PostFactory(title="Hidden thing", is_hidden=True)
    assert b"Hidden thing" not in client.get(reverse("community:feed")).content
    assert client.get(post.get_absolute_url()).status_code == 404
    client.force_login(alice)
    assert client.get(post.get_absolute_url()).status_code == 404
    client.force_login(charlie)
    assert client.get(post.get_absolute_url()).status_code == 200


def test_create_post_requires_login_and_sanitises(client, alice, django_capture_on_commit_callbacks):
    url = reverse("community:post_create")
    assert client.post(url, {"title": "x", "body": "y"}).status_code == 302
    assert not Post.objects.exists()
    client.force_login(alice)
    # CommonMark: a line opening with <script> is a raw HTML block (nh3 drops it), so the Markdown gets its own line.
    body = '<script>alert(1)</script><img src=x onerror="alert(2)">\n\n[click](javascript:alert(3)) **ok**'
    response = client.post(url, {"title": "Mine", "body": body})
    post = Post.objects.get()
    assert response.status_code == 302 and response["Location"] == post.get_absolute_url()
    page = client.get(post.get_absolute_url()).content.decode()
    prose = page.split('<div class="prose"', 1)[1].split(">", 1)[1].split("</div>", 1)[0]
    assert "<script" not in prose and "onerror" not in prose and "javascript:" not in prose
    assert "<strong>ok</strong>" in prose


def test_edit_and_delete_own_post_only(client, alice, bob, charlie):
    post = PostFactory(author=alice, title="Original")
    client.force_login(bob)
    assert client.get(reverse("community:post_edit", args=[post.pk])).status_code == 403
    assert client.post(reverse("community:post_edit", args=[post.pk]), {"title": "Hacked", "body": "x"}).status_code == 403
    assert client.post(reverse("community:post_delete", args=[post.pk])).status_code == 403
    post.refresh_from_db()
    assert post.title == "Original"
    client.force_login(alice)
    client.post(reverse("community:post_edit", args=[post.pk]), {"title": "Edited", "body": "new"})
    post.refresh_from_db()
    assert post.title == "Edited"
    client.post(reverse("community:post_delete", args=[post.pk]))
    assert not Post.objects.filter(pk=post.pk).exists()


def test_comment_and_reply_notify(client, alice, bob):
    post = PostFactory(author=alice)
    client.force_login(bob)
    client.post(reverse("community:comment_create", args=[post.pk]), {"body": "Great post @Alice"})
    top = Comment.objects.get()
    assert Notification.objects.filter(recipient=alice, verb="commented").count() == 1
    assert not Notification.objects.filter(recipient=alice, verb="mentioned").exists()  # already told once
    client.force_login(alice)
    client.post(reverse("community:comment_create", args=[post.pk]), {"body": "Thanks!", "parent": top.pk})
    reply = Comment.objects.exclude(pk=top.pk).get()
    assert reply.parent_id == top.pk
    assert Notification.objects.filter(recipient=bob, verb="replied").count() == 1
    page = client.get(post.get_absolute_url()).content.decode()
    assert f'id="comment-{reply.pk}"' in page


def test_delete_comment_own_only(client, alice, bob):
    comment = CommentFactory(author=alice)
    client.force_login(bob)
    assert client.post(reverse("community:comment_delete", args=[comment.pk])).status_code == 403
    client.force_login(alice)
    client.post(reverse("community:comment_delete", args=[comment.pk]))
    assert not Comment.objects.exists()


def test_reaction_toggle_htmx_fragment(client, alice, bob):
    post = PostFactory(author=alice)
    client.force_login(bob)
    url = reverse("community:post_react", args=[post.pk])
    response = client.post(url, {"kind": "like"}, **HX)
    body = response.content.decode()
    assert "<html" not in body and 'id="reactions"' in body and 'aria-pressed="true"' in body
    assert Reaction.objects.filter(member=bob, post=post).count() == 1
    client.post(url, {"kind": "like"}, **HX)
    assert not Reaction.objects.exists()
    assert client.post(url, {"kind": "like"}).status_code == 302  # without htmx
    assert client.post(url, {"kind": "bogus"}).status_code == 400


def test_reaction_requires_login(client):
    post = PostFactory()
    assert client.post(reverse("community:post_react", args=[post.pk])).status_code == 302
    assert not Reaction.objects.exists()


def test_pin_and_hide_staff_only(client, alice, charlie):
    post = PostFactory(author=alice)
    client.force_login(alice)
    assert client.post(reverse("community:post_pin", args=[post.pk])).status_code == 403
    assert client.post(reverse("community:post_hide", args=[post.pk])).status_code == 403
    client.force_login(charlie)
    client.post(reverse("community:post_pin", args=[post.pk]))
    client.post(reverse("community:post_hide", args=[post.pk]))
    post.refresh_from_db()
    assert post.is_pinned and post.is_hidden


def test_follow_toggle_view(client, alice, bob):
    client.force_login(alice)
    client.post(reverse("community:follow", args=[bob.pk]), {"next": "/community/"})
    assert Follow.objects.filter(follower=alice, followed=bob).exists()
    assert client.post(reverse("community:follow", args=[alice.pk])).status_code == 400
    response = client.post(reverse("community:follow", args=[bob.pk]), {"next": "//evil.example/"})
    assert response["Location"] == reverse("community:feed")  # no open redirect


def test_notifications_page_unread_count_and_mark_read(client, alice, bob, django_assert_num_queries):
    post = PostFactory(author=alice)
    for i in range(4):
        services.comment_create(post=post, author=UserFactory(), body=f"c{i}")
    assert client.get(reverse("community:notifications")).status_code == 302
    client.force_login(alice)
    client.get(reverse("community:notifications"))
    # session, user, count, page with actors joined, header unread count.
    with django_assert_num_queries(5):
        response = client.get(reverse("community:notifications"))
    body = response.content.decode()
    assert '<span class="badge"' in body and ">4</span>" in body
    fragment = client.get(reverse("community:notifications"), **HX)
    assert b"<html" not in fragment.content and b'id="notification-list"' in fragment.content
    note = Notification.objects.filter(recipient=alice).first()
    client.force_login(bob)
    assert client.post(reverse("community:notification_read", args=[note.pk])).status_code == 404
    client.force_login(alice)
    response = client.post(reverse("community:notification_read", args=[note.pk]), {"go": "1"})
    assert response["Location"] == note.target_url
    client.post(reverse("community:notifications_read_all"), **HX)
    assert not Notification.objects.filter(recipient=alice, read_at__isnull=True).exists()


def test_edit_comment_own_only_and_staff_hides(client, alice, bob, charlie):
    comment = CommentFactory(author=alice, body="first")
    url = reverse("community:comment_edit", args=[comment.pk])
    client.force_login(bob)
    assert client.get(url).status_code == 403
    assert client.post(url, {"body": "hacked"}).status_code == 403
    assert client.post(reverse("community:comment_hide", args=[comment.pk])).status_code == 403
    client.force_login(alice)
    assert client.get(url).status_code == 200
    client.post(url, {"body": "*edited*"})
    comment.refresh_from_db()
    assert comment.body == "*edited*" and "<em>edited</em>" in comment.body_html
    client.force_login(charlie)
    client.post(reverse("community:comment_hide", args=[comment.pk]))
    comment.refresh_from_db()
    assert comment.is_hidden
    client.force_login(bob)
    assert "edited" not in client.get(comment.post.get_absolute_url()).content.decode()


@pytest.mark.parametrize("author_deleted", [False, True])
def test_thread_page_query_count_is_constant(client, alice, bob, author_deleted, django_assert_num_queries):
    zelda = UserFactory(display_name="Zelda")
    post = PostFactory(author=zelda)
    for i in range(6):
        top = CommentFactory(post=post, author=zelda if i % 2 else UserFactory())
        CommentFactory(post=post, parent=top, author=zelda)
        CommentFactory(post=post, parent=top)
    if author_deleted:
        zelda.delete()  # SET_NULL: the post, Zelda's comments and everyone else's stay
    client.force_login(bob)
    client.get(post.get_absolute_url())
    # session, user, the post with counts, top comments with authors, replies with authors, whether bob follows
    # the author (skipped when there is none), reaction counts, bob's reactions, header unread count.
    with django_assert_num_queries(8 if author_deleted else 9):
        response = client.get(post.get_absolute_url())
    page = response.content.decode()
    assert page.count('class="comment"') == 18
    assert page.count("Deleted member") == (10 if author_deleted else 0)
