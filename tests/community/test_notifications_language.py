"""Notifications are stored as a verb with parameters and written in the reader's language when shown."""
from __future__ import annotations

from django.urls import reverse

from community import services
from community.models import Notification
from tests.community.factories import PostFactory


def test_a_comment_notification_is_a_code_with_parameters_not_an_english_sentence(alice, bob):
    post = PostFactory(author=alice)
    services.comment_create(post=post, author=bob, body="Great cheat sheet")
    note = Notification.objects.get(recipient=alice)
    assert note.verb == "commented" and note.params == {"excerpt": "Great cheat sheet"} and note.text == ""


def test_the_page_writes_the_sentence_in_the_viewers_language_once(client, alice, bob):
    post = PostFactory(author=alice)
    services.comment_create(post=post, author=bob, body="好文，收藏了")
    services.reaction_toggle(member=bob, post=post, kind="insightful")
    client.force_login(alice)
    client.cookies["django_language"] = "zh-hans"
    page = client.get(reverse("community:notifications")).content.decode()
    assert f"{bob.name} 评论了您的帖子" in page and "“好文，收藏了”" in page
    assert f"{bob.name} 对您的帖子表示：有启发" in page
    assert "commented on your post" not in page
    client.cookies["django_language"] = "en"
    page = client.get(reverse("community:notifications")).content.decode()
    assert f"{bob.name} commented on your post" in page and page.count("commented on your post") == 1


def test_old_rows_with_a_stored_sentence_stay_readable_without_repeating_it(client, alice, bob):
    # Before params: the demo stored whole sentences, the services stored the excerpt or the reaction kind in text.
    Notification.objects.create(recipient=alice, actor=bob, verb="commented", text=f"{bob.name} commented on your post")
    Notification.objects.create(recipient=alice, actor=bob, verb="replied", text="see you there")
    Notification.objects.create(recipient=alice, actor=bob, verb="reacted", text="like")
    client.force_login(alice)
    page = client.get(reverse("community:notifications")).content.decode()
    assert page.count("commented on your post") == 1  # the sentence once, not "X commented…: “X commented…”"
    assert f"{bob.name} replied to your comment" in page and "“see you there”" in page
    assert f"{bob.name} reacted to your post: Like" in page
