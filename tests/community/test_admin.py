"""Admin pin/hide go through community.services like the site and the API: same result, same events."""
from __future__ import annotations

import pytest
from django.contrib import admin

from analytics.models import Event
from community.models import Post
from tests.community.factories import PostFactory
from tests.members.factories import UserFactory


@pytest.mark.parametrize(("action", "field", "value", "kind"), [
    ("pin", "is_pinned", True, "post_pinned"),
    ("unpin", "is_pinned", False, "post_unpinned"),
    ("hide", "is_hidden", True, "post_hidden"),
    ("unhide", "is_hidden", False, "post_unhidden"),
])
def test_admin_post_actions_call_the_service(db, rf, django_capture_on_commit_callbacks, action, field, value, kind):
    staff = UserFactory(is_staff=True, is_superuser=True)
    post = PostFactory(**{field: not value})
    request = rf.post("/admin/community/post/")
    request.user = staff
    model_admin = admin.site._registry[Post]
    with django_capture_on_commit_callbacks(execute=True):
        getattr(model_admin, action)(request, Post.objects.filter(pk=post.pk))
    post.refresh_from_db()
    assert getattr(post, field) is value
    assert Event.objects.filter(kind=kind, member=staff).count() == 1
