"""Deleting a post (with its comments) or a comment is permanent, so the thread page asks before it submits."""
from __future__ import annotations

import pytest

from tests.community.factories import CommentFactory, PostFactory

pytestmark = pytest.mark.django_db


def test_delete_buttons_ask_for_confirmation(client):
    post = PostFactory()
    CommentFactory(post=post, author=post.author)
    client.force_login(post.author)
    html = client.get(post.get_absolute_url()).content.decode()
    # static/js/site.js asks (data-confirm): the CSP forbids inline handlers.
    assert html.count('data-confirm="Delete this post and its comments? This cannot be undone."') == 1
    assert html.count('data-confirm="Delete this comment? This cannot be undone."') == 1
    assert "onsubmit=" not in html
