"""`{% course_reviews_block course %}`: the reviews section any course page can include without its view's help."""
from __future__ import annotations

from typing import Any

from django import template

from members.models import Course

register = template.Library()


@register.inclusion_tag("members/reviews/_reviews_block.html", takes_context=True)
def course_reviews_block(context: template.Context, course: Course) -> dict[str, Any]:
    from members.reviews.views import reviews_context

    request = context["request"]
    return {**reviews_context(request=request, course=course), "request": request,
            "csrf_token": context.get("csrf_token")}


@register.filter
def stars(value: float | None) -> str:
    if value is None:
        return ""
    full = round(float(value))
    return "★" * full + "☆" * (5 - full)
