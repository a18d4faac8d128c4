from __future__ import annotations

import pytest

from analytics.models import Event
from community import exceptions, services
from community.models import Comment, Follow, Notification, Reaction
from tests.community.factories import CommentFactory, PostFactory

pytestmark = pytest.mark.django_db


def test_post_create_sanitises_markdown_and_records_event(alice, django_capture_on_commit_callbacks):
    body = "Hi **there** <script>alert(1)</script> <img src=x onerror=alert(1)> [x](javascript:alert(1))"
    with django_capture_on_commit_callbacks(execute=True):
        post = services.post_create(author=alice, title="Hello", body=body)
    assert "<strong>there</strong>" in post.body_html
    assert "<script" not in post.body_html
    assert "onerror" not in post.body_html
    assert "javascript:" not in post.body_html
    assert Event.objects.filter(member=alice, kind="post_created", object_id=str(post.pk)).exists()


def test_mentions_by_display_name_and_email_local_part_notify(alice, bob, charlie):
    post = services.post_create(author=alice, title="Hi", body="ping @bob and @Charlie and @alice and @nobody")
    recipients = set(Notification.objects.filter(verb=Notification.Verb.MENTIONED).values_list("recipient_id", flat=True))
    assert recipients == {bob.pk, charlie.pk}
    assert post.pk


def test_post_update_only_by_author_or_staff(alice, bob, charlie):
    post = PostFactory(author=alice)
    with pytest.raises(exceptions.NotAllowed):
        services.post_update(post=post, member=bob, title="x", body="y")
    services.post_update(post=post, member=alice, title="New", body="*new*")
    post.refresh_from_db()
    assert post.title == "New" and "<em>new</em>" in post.body_html
    services.post_update(post=post, member=charlie, title="Staff fix", body="ok")


def test_post_delete_own_only(alice, bob):
    post = PostFactory(author=alice)
    with pytest.raises(exceptions.NotAllowed):
        services.post_delete(post=post, member=bob)
    services.post_delete(post=post, member=alice)
    assert not type(post).objects.filter(pk=post.pk).exists()


def test_reply_to_a_reply_attaches_to_top_level_and_notifies(alice, bob, charlie):
    post = PostFactory(author=alice)
    top = services.comment_create(post=post, author=bob, body="first")
    reply = services.comment_create(post=post, author=charlie, body="reply", parent=top)
    deeper = services.comment_create(post=post, author=alice, body="reply to reply", parent=reply)
    assert reply.parent_id == top.pk
    assert deeper.parent_id == top.pk
    # bob got a "replied" for charlie's reply; alice (post author) got "commented" for bob and charlie.
    assert Notification.objects.filter(recipient=bob, verb="replied").count() == 2
    assert Notification.objects.filter(recipient=alice, verb="commented").count() == 2
    assert not Notification.objects.filter(recipient=alice, actor=alice).exists()


def test_comment_on_another_posts_parent_is_rejected(alice, bob):
    other = CommentFactory()
    with pytest.raises(exceptions.InvalidTarget):
        services.comment_create(post=PostFactory(), author=bob, body="x", parent=other)


def test_reaction_toggle_adds_then_removes(alice, bob, django_capture_on_commit_callbacks):
    post = PostFactory(author=alice)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.reaction_toggle(member=bob, post=post) is True
    assert Reaction.objects.filter(member=bob, post=post).count() == 1
    assert Event.objects.filter(kind="reaction_added", member=bob).exists()
    assert Notification.objects.filter(recipient=alice, verb="reacted").exists()
    assert services.reaction_toggle(member=bob, post=post) is False
    assert not Reaction.objects.filter(member=bob, post=post).exists()


def test_reaction_needs_exactly_one_target(bob):
    with pytest.raises(exceptions.InvalidTarget):
        services.reaction_toggle(member=bob)


def test_pin_and_hide_are_staff_only(alice, charlie):
    post = PostFactory(author=alice)
    with pytest.raises(exceptions.StaffOnly):
        services.post_pin(post=post, member=alice)
    with pytest.raises(exceptions.StaffOnly):
        services.post_hide(post=post, member=alice)
    services.post_pin(post=post, member=charlie)
    services.post_hide(post=post, member=charlie)
    post.refresh_from_db()
    assert post.is_pinned and post.is_hidden


def test_follow_toggle_and_no_self_follow(alice, bob):
    assert services.follow_toggle(follower=alice, followed=bob) is True
    assert Follow.objects.filter(follower=alice, followed=bob).exists()
    assert services.follow_toggle(follower=alice, followed=bob) is False
    with pytest.raises(exceptions.CannotFollowSelf):
        services.follow_toggle(follower=alice, followed=alice)


def test_notifications_mark_read_only_own(alice, bob):
    post = PostFactory(author=alice)
    services.comment_create(post=post, author=bob, body="hi")
    services.comment_create(post=post, author=bob, body="again")
    note = Notification.objects.filter(recipient=alice).first()
    with pytest.raises(exceptions.NotAllowed):
        services.notification_mark_read(notification=note, member=bob)
    services.notification_mark_read(notification=note, member=alice)
    note.refresh_from_db()
    assert note.read_at is not None
    assert services.notifications_mark_all_read(member=alice) == 1
    assert not Notification.objects.filter(recipient=alice, read_at__isnull=True).exists()


def test_comment_delete_own_only(alice, bob):
    comment = CommentFactory(author=alice)
    with pytest.raises(exceptions.NotAllowed):
        services.comment_delete(comment=comment, member=bob)
    services.comment_delete(comment=comment, member=alice)
    assert not Comment.objects.filter(pk=comment.pk).exists()
