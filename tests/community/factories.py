from __future__ import annotations

import factory

from community.markdown import render_markdown
from community.models import Comment, Post
from tests.members.factories import UserFactory


class PostFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Post

    author = factory.SubFactory(UserFactory)
    title = factory.Sequence(lambda n: f"Post {n}")
    body = "Hello **world**"
    body_html = factory.LazyAttribute(lambda o: render_markdown(o.body))


class CommentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Comment

    post = factory.SubFactory(PostFactory)
    author = factory.SubFactory(UserFactory)
    body = "Nice post"
    body_html = factory.LazyAttribute(lambda o: render_markdown(o.body))
