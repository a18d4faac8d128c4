"""Posts and comments outlive their author: deleting a member keeps other members' comments, replies and reactions
under the deleted member's posts; pages, API and admin show "Deleted member"; nobody edits an authorless post."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse
from django.utils import translation

from community import exceptions, services
from community.models import Comment, Notification, Post, Reaction
from tests.api.conftest import _client_for
from tests.community.factories import CommentFactory, PostFactory
from tests.members.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def zelda(db):
    return UserFactory(email="zelda@example.com", display_name="Zelda")


@pytest.fixture
def thread(zelda, bob):
    """Zelda's post with Bob's comment, Zelda's reply to it, Bob's reply, and Bob's like; then Zelda's account row
    is deleted outright (the FK's on_delete, not the erasure service)."""
    post = PostFactory(author=zelda, title="Zelda asks", body="What is SQL?")
    bobs_comment = CommentFactory(post=post, author=bob, body="Bob answers")
    zeldas_reply = CommentFactory(post=post, author=zelda, parent=bobs_comment, body="Zelda thanks")
    bobs_reply = CommentFactory(post=post, author=bob, parent=bobs_comment, body="Bob again")
    Reaction.objects.create(member=bob, post=post)
    zelda.delete()
    for obj in (post, bobs_comment, zeldas_reply, bobs_reply):
        obj.refresh_from_db()  # SET_NULL updated the rows, not these instances
    return {"post": post, "bobs_comment": bobs_comment, "zeldas_reply": zeldas_reply, "bobs_reply": bobs_reply}


def test_deleting_a_member_keeps_other_members_comments_replies_and_reactions(thread, bob):
    post = Post.objects.get(pk=thread["post"].pk)
    assert post.author_id is None and post.body == "What is SQL?"
    assert Comment.objects.get(pk=thread["bobs_comment"].pk).author == bob
    assert Comment.objects.get(pk=thread["bobs_reply"].pk).author == bob
    assert Comment.objects.get(pk=thread["zeldas_reply"].pk).author_id is None
    assert Reaction.objects.filter(post=post, member=bob).exists()


def test_author_erase_detaches_and_blanks_only_that_members_words(zelda, bob):
    post = PostFactory(author=zelda, title="Zelda asks", body="I am Zelda")
    bobs_comment = CommentFactory(post=post, author=bob, body="Bob answers")
    zeldas_comment = CommentFactory(post=PostFactory(author=bob, title="Bob's"), author=zelda, body="Zelda here")
    assert services.author_erase(member_id=zelda.pk) == {"posts": 1, "comments": 1}
    post.refresh_from_db()
    zeldas_comment.refresh_from_db()
    bobs_comment.refresh_from_db()
    assert (post.author_id, post.title, post.body, post.body_html) == (None, "", "", "")
    assert (zeldas_comment.author_id, zeldas_comment.body, zeldas_comment.body_html) == (None, "", "")
    assert post.is_erased and zeldas_comment.is_erased
    assert bobs_comment.author == bob and bobs_comment.body == "Bob answers" and not bobs_comment.is_erased
    assert Post.objects.filter(author=bob, title="Bob's").exists()


# ---- the thread page


def test_thread_page_shows_deleted_member_and_no_follow_or_edit(client, thread, bob, charlie):
    url = thread["post"].get_absolute_url()
    for viewer in (None, bob, charlie):
        if viewer:
            client.force_login(viewer)
        page = client.get(url).content.decode()
        assert page.count("Deleted member") == 2  # the post and Zelda's reply
        assert "Bob answers" in page and "Bob again" in page and "Zelda asks" in page
        assert reverse("community:post_edit", args=[thread["post"].pk]) not in page
        assert reverse("community:comment_edit", args=[thread["zeldas_reply"].pk]) not in page
        assert "/follow" not in page.split('id="comments-h"')[0]
    # Staff still moderate: delete is offered, and Bob's own comment stays editable for him and staff.
    assert reverse("community:post_delete", args=[thread["post"].pk]) in page
    assert reverse("community:comment_edit", args=[thread["bobs_comment"].pk]) in page


def test_thread_page_translates_deleted_member_and_shows_placeholder_for_erased_text(client, zelda, bob):
    post = PostFactory(author=zelda, title="Zelda asks", body="I am Zelda")
    CommentFactory(post=post, author=bob, body="Bob answers")
    services.author_erase(member_id=zelda.pk)
    page = client.get(post.get_absolute_url()).content.decode()
    assert "Deleted member" in page and "Removed post" in page and "Removed: its author deleted their account." in page
    assert "I am Zelda" not in page and "Bob answers" in page
    with translation.override("zh-hans"):
        zh_name = Post.objects.get(pk=post.pk).author_name
        zh_title = Post.objects.get(pk=post.pk).display_title
    assert zh_name != "Deleted member" and zh_title != "Removed post"
    page = client.get(post.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert zh_name in page and zh_title in page and "Deleted member" not in page


def test_feed_shows_deleted_member(client, thread):
    page = client.get(reverse("community:feed")).content.decode()
    assert "Zelda asks" in page and "Deleted member" in page


# ---- nobody edits an authorless post or comment


@pytest.mark.parametrize("role", ["bob", "charlie"])
def test_nobody_can_edit_an_authorless_post_or_comment_on_the_site(client, thread, role, request):
    client.force_login(request.getfixturevalue(role))
    post, reply = thread["post"], thread["zeldas_reply"]
    assert client.get(reverse("community:post_edit", args=[post.pk])).status_code == 403
    response = client.post(reverse("community:post_edit", args=[post.pk]), {"title": "Rewritten", "body": "x"})
    assert response.status_code == 403 and b"deleted their account" in response.content
    response = client.post(reverse("community:comment_edit", args=[reply.pk]), {"body": "Rewritten"})
    assert response.status_code == 403
    assert Post.objects.get(pk=post.pk).title == "Zelda asks"
    assert Comment.objects.get(pk=reply.pk).body == "Zelda thanks"


@pytest.mark.parametrize("member", ["anonymous", "bob", "charlie"])
def test_services_refuse_to_edit_authorless_content(thread, member, request):
    who = AnonymousUser() if member == "anonymous" else request.getfixturevalue(member)
    with pytest.raises(exceptions.NotAllowed):
        services.post_update(post=thread["post"], member=who, title="Rewritten", body="x")
    with pytest.raises(exceptions.NotAllowed):
        services.comment_update(comment=thread["zeldas_reply"], member=who, body="x")


def test_only_staff_delete_an_authorless_post(thread, bob, charlie):
    # An anonymous caller has pk None, like the post's author: it must not count as the owner.
    for member in (AnonymousUser(), bob):
        with pytest.raises(exceptions.NotAllowed):
            services.post_delete(post=thread["post"], member=member)
        with pytest.raises(exceptions.NotAllowed):
            services.comment_delete(comment=thread["zeldas_reply"], member=member)
    services.comment_delete(comment=thread["zeldas_reply"], member=charlie)
    services.post_delete(post=thread["post"], member=charlie)
    assert not Post.objects.exists()


def test_api_renders_deleted_member_and_refuses_edits(thread, charlie):
    pk = thread["post"].pk
    deleted = {"id": None, "name": "Deleted member"}
    anon = _client_for(None)
    item = anon.get("/api/v1/posts/").json()["results"][0]
    detail = anon.get(f"/api/v1/posts/{pk}/").json()
    assert item["author"] == deleted and detail["author"] == deleted
    comment = detail["comments"][0]
    assert comment["body"] == "Bob answers" and comment["author"]["name"] == "Bob"
    assert [r["author"] for r in comment["replies"]] == [deleted, {"id": comment["author"]["id"], "name": "Bob"}]
    with translation.override("zh-hans"):
        zh_name = str(Post.objects.get(pk=pk).author_name)
    zh = anon.get(f"/api/v1/posts/{pk}/", HTTP_ACCEPT_LANGUAGE="zh-hans").json()
    assert zh["author"] == {"id": None, "name": zh_name} and zh_name != "Deleted member"
    staff = _client_for(charlie)
    response = staff.patch(f"/api/v1/posts/{pk}/", {"body": "Rewritten"}, format="json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "author_deleted"
    response = staff.patch(f"/api/v1/comments/{thread['zeldas_reply'].pk}/", {"body": "x"}, format="json")
    assert response.status_code == 403


# ---- answering a deleted member


def test_commenting_replying_and_reacting_to_a_deleted_members_content_notifies_nobody(thread, alice):
    post, reply = thread["post"], thread["zeldas_reply"]
    before = Notification.objects.count()
    services.comment_create(post=post, author=alice, body="Late answer")
    comment = services.comment_create(post=post, author=alice, body="To Zelda", parent=Comment.objects.get(pk=reply.pk))
    assert comment.parent_id == thread["bobs_comment"].pk  # one level of replies: attaches to Bob's comment
    assert services.reaction_toggle(member=alice, post=post) is True
    # Bob is told about Alice's reply under his comment; the deleted member about nothing.
    assert Notification.objects.count() == before + 1
    assert Notification.objects.filter(recipient__isnull=True).count() == 0


# ---- admin


def test_admin_lists_and_shows_deleted_member_read_only(staff_client, thread):
    post, reply = thread["post"], thread["zeldas_reply"]
    listing = staff_client.get(reverse("admin:community_post_changelist")).content.decode()
    assert "Deleted member" in listing
    page = staff_client.get(reverse("admin:community_post_change", args=[post.pk])).content.decode()
    assert "Deleted member" in page and 'name="body"' not in page and 'name="author"' not in page
    page = staff_client.get(reverse("admin:community_comment_change", args=[reply.pk])).content.decode()
    assert "Deleted member" in page and 'name="body"' not in page
    listing = staff_client.get(reverse("admin:community_comment_changelist")).content.decode()
    assert "Deleted member" in listing
