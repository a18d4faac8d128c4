"""Formatting helpers for the learner's site: money with the currency symbol, localized per the active language."""
from __future__ import annotations

from decimal import Decimal

import markdown as md
import nh3
from django import template
from django.utils.formats import number_format
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language

register = template.Library()

SYMBOLS = {"CNY": "¥", "USD": "$", "EUR": "€"}


@register.filter
def money(value: Decimal | int | str | None, currency: str = "CNY") -> str:
    if value in (None, ""):
        return ""
    amount = number_format(Decimal(value), 2, force_grouping=True)
    return f"{SYMBOLS.get(currency, currency + ' ')}{amount}"


@register.filter
def course_title(course: object) -> str:
    display = getattr(course, "display_title", None)
    return display(get_language()) if display else str(course)


LESSON_TAGS = {
    "p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li", "a", "h2", "h3", "h4", "hr", "table",
    "thead", "tbody", "tr", "th", "td",
}


@register.filter
def lesson_markdown(text: str | None) -> SafeString:
    """Lesson bodies are written in Markdown; render them, keeping formatting tags and safe links only."""
    html = md.markdown(text or "", extensions=["fenced_code", "tables", "sane_lists"], output_format="html")
    return mark_safe(nh3.clean(html, tags=LESSON_TAGS, attributes={"a": {"href", "title"}},  # noqa: S308
                               url_schemes={"http", "https", "mailto"}, link_rel="nofollow noopener noreferrer"))


@register.simple_tag(takes_context=True)
def query_with(context: template.Context, **changes: object) -> str:
    """The current query string with some keys replaced (pagination and sort links keep the filters)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        if value in (None, ""):
            params.pop(key, None)
        else:
            params[key] = value
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"
