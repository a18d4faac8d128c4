"""Hostile post and comment bodies (issue 13.6). Before: `"[" * 20000` took 50–67 s to render, inside the write
transaction, so about half of the other members' comments meanwhile failed with "database is locked"; `"- " * 1000`
raised RecursionError (500) in the form and the API; a 1 MB body went through the form (7–10 s).
Times are measured by bench/bench_hostile.py against a real server, never asserted here."""
from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.urls import reverse

from community import markdown, services
from community.exceptions import BodyTooLong
from community.models import COMMENT_BODY_MAX_LENGTH, POST_BODY_MAX_LENGTH, Comment, Post
from tests.community.factories import PostFactory
from tests.members.factories import UserFactory

pytestmark = pytest.mark.adversarial


@pytest.fixture
def alice_api(alice):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=alice).key}")
    return client

BRACKETS = "[" * 20000
NESTED_LIST = "- " * 1000
ONE_MB = "a" * 1_000_000


@pytest.mark.django_db
@pytest.mark.parametrize("body", [BRACKETS, NESTED_LIST], ids=["brackets", "nested-list"])
def test_pathological_markdown_posts_through_the_form(alice_client, body):
    response = alice_client.post(reverse("community:post_create"), {"title": "Hostile", "body": body})
    assert response.status_code == 302
    post = Post.objects.get()
    assert post.body == body.strip() and post.body_rendered_with == markdown.RENDERER_VERSION


@pytest.mark.django_db
@pytest.mark.parametrize("body", [BRACKETS, NESTED_LIST], ids=["brackets", "nested-list"])
def test_pathological_markdown_posts_and_comments_through_the_api(alice_api, body):
    response = alice_api.post("/api/v1/posts/", {"title": "Hostile", "body": body}, format="json")
    assert response.status_code == 201, response.content[:300]
    post_id = response.json()["id"]
    comment = alice_api.post(f"/api/v1/posts/{post_id}/comments/", {"body": body[:COMMENT_BODY_MAX_LENGTH]},
                             format="json")
    assert comment.status_code == 201, comment.content[:300]


@pytest.mark.django_db
def test_a_1mb_body_is_refused_with_a_message_by_form_api_and_service(alice, alice_client, alice_api):
    page = alice_client.post(reverse("community:post_create"), {"title": "Big", "body": ONE_MB})
    assert page.status_code == 200
    assert "at most 20000 characters" in page.content.decode().replace(",", "")
    api = alice_api.post("/api/v1/posts/", {"title": "Big", "body": ONE_MB}, format="json")
    assert api.status_code == 400 and "body" in api.json()["error"]["fields"]
    post = PostFactory()
    comment = alice_client.post(reverse("community:comment_create", args=[post.pk]), {"body": ONE_MB})
    assert comment.status_code in (200, 302) and not Comment.objects.exists()
    with pytest.raises(BodyTooLong):
        services.post_create(author=alice, title="Big", body="x" * (POST_BODY_MAX_LENGTH + 1))
    with pytest.raises(BodyTooLong):
        services.comment_create(post=post, author=alice, body="x" * (COMMENT_BODY_MAX_LENGTH + 1))
    assert not Post.objects.exclude(pk=post.pk).exists()


def test_model_fields_carry_the_limits():
    assert Post._meta.get_field("body").max_length == POST_BODY_MAX_LENGTH
    assert Comment._meta.get_field("body").max_length == COMMENT_BODY_MAX_LENGTH


@pytest.mark.django_db(transaction=True)
def test_bodies_are_rendered_outside_any_transaction(monkeypatch):
    author, post = UserFactory(), None
    seen: list[bool] = []
    real = markdown.render_markdown

    def spy(text: str) -> str:
        seen.append(connection.in_atomic_block)
        return real(text)

    monkeypatch.setattr(services, "render_markdown", spy)
    post = services.post_create(author=author, title="t", body="**a**")
    services.post_update(post=post, member=author, title="t", body="**b**")
    comment = services.comment_create(post=post, author=author, body="*c*")
    services.comment_update(comment=comment, member=author, body="*d*")
    assert seen == [False, False, False, False]


@pytest.mark.django_db(transaction=True)
def test_other_members_comment_while_a_hostile_post_renders(monkeypatch):
    """A real thread posts `"[" * 20000`; while its render runs (held open until the others are done, so the
    overlap is certain), another thread writes ten comments. All ten must land. Before the fix the render ran inside
    the post's write transaction and the comments failed with 'database is locked'."""
    author, other = UserFactory(), UserFactory()
    target = PostFactory(author=other)
    rendering, others_done = threading.Event(), threading.Event()
    real = markdown.render_markdown
    errors: list[str] = []
    created: list[int] = []

    def slow_render(text: str) -> str:
        html = real(text)
        if text == BRACKETS:
            rendering.set()
            others_done.wait(timeout=30)
        return html

    monkeypatch.setattr(services, "render_markdown", slow_render)

    def hostile() -> None:
        try:
            services.post_create(author=author, title="Hostile", body=BRACKETS)
        except Exception as exc:  # recorded for the assertion below
            errors.append(f"hostile: {type(exc).__name__}: {exc}")
        finally:
            rendering.set()
            connection.close()

    def commenter() -> None:
        try:
            rendering.wait(timeout=30)
            for n in range(10):
                try:
                    created.append(services.comment_create(post=target, author=other, body=f"comment {n}").pk)
                except Exception as exc:  # each failure is one member's lost comment
                    errors.append(f"comment {n}: {type(exc).__name__}: {exc}")
        finally:
            others_done.set()
            connection.close()

    threads = [threading.Thread(target=hostile), threading.Thread(target=commenter)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(created) == 10
    assert Post.objects.filter(title="Hostile").count() == 1


@pytest.mark.django_db
def test_the_backfill_rerenders_old_rows_and_its_reverse_forgets_the_version():
    import importlib

    from django.apps import apps

    migration = importlib.import_module("community.migrations.0005_rerender_bodies_with_markdown_it")
    post = PostFactory(body="~~gone~~ **kept**")
    Post.objects.filter(pk=post.pk).update(body_html="<p>old</p>", body_rendered_with=0)
    erased = PostFactory(body="")
    Post.objects.filter(pk=erased.pk).update(body_html="", body_rendered_with=0)

    migration.rerender(apps, None)

    post.refresh_from_db()
    erased.refresh_from_db()
    assert post.body_html == "<p><s>gone</s> <strong>kept</strong></p>\n"
    assert post.body_rendered_with == erased.body_rendered_with == markdown.RENDERER_VERSION
    assert erased.body_html == ""
    migration.forget_version(apps, None)
    assert set(Post.objects.values_list("body_rendered_with", flat=True)) == {0}
