"""Lesson bodies are Markdown: the lesson page renders it (headings, emphasis, lists) and never raw HTML or scripts."""
from __future__ import annotations

import pytest

from tests.members.factories import CourseFactory, LessonFactory

pytestmark = pytest.mark.django_db


def test_lesson_body_markdown_is_rendered_and_sanitised(client):
    lesson = LessonFactory(course=CourseFactory(), position=1, is_preview=True,
                           body="## Colour\n\nIn this lesson of *UX*:\n\n- Watch\n- Try\n\n<script>alert(1)</script>"
                                "\n\n[bad](javascript:alert(1)) [ok](https://example.com)")
    html = client.get(lesson.get_absolute_url()).content.decode()
    assert "<h2>Colour</h2>" in html and "<em>UX</em>" in html and "<li>Watch</li>" in html
    assert "## Colour" not in html
    assert "<script>alert(1)" not in html and "javascript:alert" not in html
    assert 'href="https://example.com"' in html
