from __future__ import annotations

import pytest

from community.models import Comment, Notification, Post, Reaction
from tests.api.conftest import assert_error
from tests.community.factories import CommentFactory, PostFactory

ROLES = ["anonymous", "alice", "bob", "charlie"]


@pytest.fixture
def alices_post(alice):
    return PostFactory(author=alice, title="Alice's post", body="Hi")


@pytest.mark.parametrize("role", ROLES)
def test_everyone_reads_the_feed_and_hidden_posts_only_staff(api_for, alices_post, role):
    PostFactory(title="Hidden", is_hidden=True)
    titles = [p["title"] for p in api_for(role).get("/api/v1/posts/").json()["results"]]
    assert "Alice's post" in titles
    assert ("Hidden" in titles) == (role == "charlie")


def test_feed_query_count_is_flat(bob_api, alice, django_assert_num_queries):
    for _n in range(10):
        post = PostFactory(author=alice)
        CommentFactory(post=post)
    with django_assert_num_queries(3):  # token, count, page with annotated counts
        body = bob_api.get("/api/v1/posts/").json()
    assert len(body["results"]) == 10 and body["results"][0]["comment_count"] == 1


@pytest.mark.parametrize(("role", "status"), [("anonymous", 401), ("alice", 201), ("bob", 201), ("charlie", 201)])
def test_create_post_permissions(api_for, db, role, status):
    response = api_for(role).post("/api/v1/posts/", {"title": "T", "body": "x"}, format="json")
    assert response.status_code == status


def test_post_body_is_sanitised(alice_api):
    response = alice_api.post(
        # CommonMark: a line opening with <script> is a raw HTML block (nh3 drops it), so the Markdown gets its own line.
        "/api/v1/posts/", {"title": "XSS", "body": "<script>alert(1)</script>\n\n[x](javascript:alert(1)) **ok**"},
        format="json",
    )
    html = response.json()["body_html"]
    assert "<script" not in html and "javascript:" not in html and "<strong>ok</strong>" in html


@pytest.mark.parametrize(("role", "status"), [("anonymous", 401), ("alice", 200), ("bob", 403), ("charlie", 200)])
def test_edit_post_owner_or_staff(api_for, alices_post, role, status):
    response = api_for(role).patch(f"/api/v1/posts/{alices_post.pk}/", {"body": "edited"}, format="json")
    assert response.status_code == status
    if status == 403:
        assert_error(response, 403, "not_allowed")
    alices_post.refresh_from_db()
    assert (alices_post.body == "edited") == (status == 200)


@pytest.mark.parametrize(("role", "status"), [("anonymous", 401), ("alice", 204), ("bob", 403), ("charlie", 204)])
def test_delete_post_owner_or_staff(api_for, alices_post, role, status):
    assert api_for(role).delete(f"/api/v1/posts/{alices_post.pk}/").status_code == status
    assert Post.objects.filter(pk=alices_post.pk).exists() == (status != 204)


@pytest.mark.parametrize("action", ["pin", "hide"])
@pytest.mark.parametrize(("role", "status"), [("anonymous", 401), ("alice", 403), ("bob", 403), ("charlie", 200)])
def test_pin_and_hide_are_staff_only(api_for, alices_post, action, role, status):
    response = api_for(role).post(f"/api/v1/posts/{alices_post.pk}/{action}/", {"value": True}, format="json")
    assert response.status_code == status
    alices_post.refresh_from_db()
    flag = alices_post.is_pinned if action == "pin" else alices_post.is_hidden
    assert flag == (status == 200)


def test_hidden_post_is_404_for_members(bob_api, alices_post, staff_api):
    staff_api.post(f"/api/v1/posts/{alices_post.pk}/hide/", {"value": True}, format="json")
    assert_error(bob_api.get(f"/api/v1/posts/{alices_post.pk}/"), 404, "not_found")
    assert staff_api.get(f"/api/v1/posts/{alices_post.pk}/").status_code == 200


def test_comments_one_level_of_replies_and_notifications(alice_api, bob_api, alices_post, alice, bob):
    top = bob_api.post(f"/api/v1/posts/{alices_post.pk}/comments/", {"body": "First"}, format="json")
    assert top.status_code == 201
    reply = alice_api.post(f"/api/v1/posts/{alices_post.pk}/comments/",
                           {"body": "Reply", "parent": top.json()["id"]}, format="json").json()
    deeper = bob_api.post(f"/api/v1/posts/{alices_post.pk}/comments/",
                          {"body": "Deeper", "parent": reply["id"]}, format="json").json()
    assert deeper["parent"] == top.json()["id"]  # a reply to a reply attaches to the top-level comment
    detail = bob_api.get(f"/api/v1/posts/{alices_post.pk}/").json()
    assert [c["body"] for c in detail["comments"]] == ["First"]
    assert [r["body"] for r in detail["comments"][0]["replies"]] == ["Reply", "Deeper"]
    assert Notification.objects.filter(recipient=alice, verb="commented").exists()
    assert Notification.objects.filter(recipient=bob, verb="replied").exists()


@pytest.mark.parametrize(("role", "status"), [("anonymous", 401), ("alice", 403), ("bob", 200), ("charlie", 200)])
def test_edit_comment_owner_or_staff(api_for, alices_post, bob, role, status):
    comment = CommentFactory(post=alices_post, author=bob)
    assert api_for(role).patch(f"/api/v1/comments/{comment.pk}/", {"body": "e"}, format="json").status_code == status


@pytest.mark.parametrize(("role", "status"), [("anonymous", 401), ("alice", 403), ("bob", 204), ("charlie", 204)])
def test_delete_comment_owner_or_staff(api_for, alices_post, bob, role, status):
    comment = CommentFactory(post=alices_post, author=bob)
    assert api_for(role).delete(f"/api/v1/comments/{comment.pk}/").status_code == status
    assert Comment.objects.filter(pk=comment.pk).exists() == (status != 204)


@pytest.mark.parametrize(("role", "status"), [("anonymous", 401), ("alice", 403), ("bob", 403), ("charlie", 200)])
def test_hide_comment_staff_only(api_for, alices_post, bob, role, status):
    comment = CommentFactory(post=alices_post, author=bob)
    assert api_for(role).post(f"/api/v1/comments/{comment.pk}/hide/", {}, format="json").status_code == status


def test_reactions_toggle_on_posts_and_comments(bob_api, alices_post, alice):
    url = f"/api/v1/posts/{alices_post.pk}/reactions/"
    assert bob_api.post(url, {"kind": "like"}, format="json").json() == {"kind": "like", "active": True}
    assert Reaction.objects.filter(post=alices_post).count() == 1
    assert bob_api.get("/api/v1/posts/").json()["results"][0]["liked"] is True
    assert bob_api.post(url, {"kind": "like"}, format="json").json()["active"] is False
    comment = CommentFactory(post=alices_post, author=alice)
    response = bob_api.post(f"/api/v1/comments/{comment.pk}/reactions/", {"kind": "thanks"}, format="json")
    assert response.json()["active"] is True
    assert_error(bob_api.post(url, {"kind": "angry"}, format="json"), 400, "invalid")
    assert_error(bob_api.post("/api/v1/posts/999999/reactions/", {}, format="json"), 404)


def test_reaction_requires_login(anon_api, alices_post):
    assert_error(anon_api.post(f"/api/v1/posts/{alices_post.pk}/reactions/", {}, format="json"), 401)


def test_notifications_mine_mark_read_and_all(alice_api, bob_api, alice, bob, django_assert_num_queries):
    notes = [Notification.objects.create(recipient=alice, actor=bob, verb="commented") for _ in range(5)]
    Notification.objects.create(recipient=bob, actor=alice, verb="commented")
    with django_assert_num_queries(3):
        body = alice_api.get("/api/v1/me/notifications/").json()
    assert body["count"] == 5 and body["results"][0]["actor"]["name"] == "Bob"
    read = alice_api.post(f"/api/v1/me/notifications/{notes[0].pk}/read/")
    assert read.status_code == 200 and read.json()["is_read"] is True
    assert_error(bob_api.post(f"/api/v1/me/notifications/{notes[1].pk}/read/"), 404)
    assert alice_api.get("/api/v1/me/notifications/?unread=1").json()["count"] == 4
    assert alice_api.post("/api/v1/me/notifications/read-all/").json() == {"marked": 4}
    assert Notification.objects.filter(recipient=bob, read_at__isnull=True).count() == 1


@pytest.mark.parametrize("url", ["/api/v1/me/notifications/", "/api/v1/me/notifications/read-all/"])
def test_notifications_need_login(anon_api, db, url):
    response = anon_api.get(url) if url.endswith("notifications/") else anon_api.post(url)
    assert_error(response, 401)
