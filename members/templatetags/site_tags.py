"""Formatting helpers for the learner's site: money with the currency symbol, localized per the active language."""
from __future__ import annotations

import hashlib
from decimal import Decimal

import markdown as md
import nh3
from django import template
from django.utils.formats import number_format
from django.utils.html import format_html
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


# Generated covers: a course without an uploaded cover gets a deterministic SVG (same slug, same picture) in one of
# a few calm palettes, with the first letter of its title in the reader's language. No file, no request.
COVER_PALETTES = (
    ("#0b6e4f", "#3fb68b"), ("#1d4e89", "#5aa9e6"), ("#7a3e9d", "#c084fc"), ("#b45309", "#fbbf24"),
    ("#9f1239", "#fb7185"), ("#155e75", "#22d3ee"), ("#3f6212", "#a3e635"), ("#374151", "#9ca3af"),
)


@register.simple_tag
def course_cover(course: object, css_class: str = "") -> SafeString:
    cover = getattr(course, "cover", None)
    if cover:
        return format_html('<img src="{}" alt="" loading="lazy" width="640" height="360" class="{}">', cover.url,
                           css_class)
    slug = str(getattr(course, "slug", "") or getattr(course, "pk", ""))
    digest = hashlib.sha256(slug.encode()).digest()
    dark, light = COVER_PALETTES[digest[0] % len(COVER_PALETTES)]
    title = course_title(course) or "?"
    # cx/cy/r of two circles and the angle come from the digest, so covers differ but never change.
    c1x, c1y, c1r = 40 + digest[1] % 240, 20 + digest[2] % 140, 50 + digest[3] % 70
    c2x, c2y, c2r = 200 + digest[4] % 120, 60 + digest[5] % 120, 30 + digest[6] % 60
    gid = f"g{digest[7]:02x}{digest[8]:02x}{digest[9]:02x}"
    return format_html(
        '<svg class="{}" viewBox="0 0 320 180" preserveAspectRatio="xMidYMid slice" aria-hidden="true" '
        'xmlns="http://www.w3.org/2000/svg"><defs><linearGradient id="{}" x1="0" y1="0" x2="1" y2="1">'
        '<stop offset="0" stop-color="{}"/><stop offset="1" stop-color="{}"/></linearGradient></defs>'
        '<rect width="320" height="180" fill="url(#{})"/>'
        '<circle cx="{}" cy="{}" r="{}" fill="#fff" fill-opacity=".12"/>'
        '<circle cx="{}" cy="{}" r="{}" fill="#fff" fill-opacity=".18"/>'
        '<text x="24" y="150" font-size="72" font-weight="700" fill="#fff" fill-opacity=".9" '
        'font-family="system-ui,sans-serif">{}</text></svg>',
        css_class, gid, dark, light, gid, c1x, c1y, c1r, c2x, c2y, c2r, title[:1].upper(),
    )


@register.filter
def text_lang(text: str | None) -> str:
    """The language members wrote something in, by script: "en" when Latin letters outnumber CJK characters,
    otherwise "zh-Hans". Community posts are not translated, so pages mark them with `lang` (screen readers switch
    voice; the Chinese page knows which parts are a member's English)."""
    value = str(text or "")
    latin = sum(1 for ch in value if ch.isascii() and ch.isalpha())
    cjk = sum(1 for ch in value if "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf")
    return "en" if latin > cjk else "zh-Hans"
