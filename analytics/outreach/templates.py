"""Staff-editable email copy (MessageTemplate): the variables each kind may use, validation, rendering, previews.

Validation walks Django's parsed template rather than pattern-matching the text, so `{{ tier.name|upper }}`,
`{% if days_left %}` and `{% for b in recap.benefits_used %}` are all checked, and a variable used anywhere — in a
filter argument, an if condition, a for sequence — must be one the kind provides (or a for-loop's own name). Tags are
limited to control flow: no {% load %}, {% include %}, {% url %} or {% debug %} in staff-edited copy.
"""
from __future__ import annotations

import re
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import FilterExpression, Node, Variable, VariableNode
from django.template.defaulttags import ForNode, IfNode
from django.utils import timezone
from django.utils.html import escape, linebreaks

from analytics.models import MessageLog, MessageTemplate

COMMON = {"member": "the member (member.name, member.email)", "site_url": "the site's address"}
UNSUBSCRIBE = {"unsubscribe_url": "this email's one-click unsubscribe page"}
VARIABLES: dict[str, dict[str, str]] = {
    MessageLog.Kind.RENEWAL_REMINDER: {
        **COMMON, **UNSUBSCRIBE, "subscription": "the membership", "tier": "its tier (tier.name)",
        "period_end": "when the period ends (a date)", "days_left": "whole days until then",
        "recap": "recap.lessons_finished, recap.posts, recap.comments, recap.benefits_used, recap.benefits_unused",
        "renew_url": "one-click renewal link", "link_days": "days the renewal link works",
    },
    MessageLog.Kind.DUNNING: {
        **COMMON, "subscription": "the membership", "tier": "its tier (tier.name)",
        "grace_until": "end of the grace period", "attempt": "failed attempt number",
        "payment_url": "page to update the payment method", "renew_url": "one-click renewal link",
    },
    MessageLog.Kind.CAMPAIGN: {
        **COMMON, **UNSUBSCRIBE, "campaign": "the campaign (campaign.name)",
        "coupon": "the member's coupon (coupon.code, coupon.valid_until)", "shop_url": "the catalogue",
    },
    MessageLog.Kind.NEWSLETTER: {**COMMON, **UNSUBSCRIBE, "newsletter": "this issue (newsletter.subject)"},
    MessageLog.Kind.COMMUNITY_DIGEST: {
        **COMMON, **UNSUBSCRIBE, "posts": "the week's top posts (post.title, post.url, post.comments)",
        "week_start": "first day of the week covered",
    },
}
ALLOWED_TAGS = {"if", "elif", "else", "endif", "for", "empty", "endfor", "comment", "endcomment", "spaceless",
                "endspaceless", "firstof", "cycle"}
TAG = re.compile(r"{%-?\s*(\w+)")
_engine = Engine(builtins=["django.template.defaulttags", "django.template.defaultfilters"], autoescape=True)


def editable_kinds() -> list[str]:
    return list(VARIABLES)


def _expression_names(expression: Any) -> list[str]:
    names: list[str] = []
    if isinstance(expression, FilterExpression):
        if isinstance(expression.var, Variable) and expression.var.literal is None:
            names.append(expression.var.var.split(".")[0])
        for _func, args in expression.filters:
            for lookup, arg in args:
                if lookup and isinstance(arg, Variable) and arg.literal is None:
                    names.append(arg.var.split(".")[0])
        return names
    # smartif condition trees: literals carry .value, operators .first/.second.
    for attr in ("value", "first", "second"):
        part = getattr(expression, attr, None)
        if part is not None and part is not expression:
            names.extend(_expression_names(part))
    return names


def _walk(nodes: list[Node], allowed: set[str], problems: list[str]) -> None:
    for node in nodes:
        scope = allowed
        used: list[str] = []
        if isinstance(node, VariableNode):
            used = _expression_names(node.filter_expression)
        elif isinstance(node, IfNode):
            for condition, _nodelist in node.conditions_nodelists:
                if condition is not None:
                    used.extend(_expression_names(condition))
        elif isinstance(node, ForNode):
            used = _expression_names(node.sequence)
            scope = allowed | set(node.loopvars) | {"forloop"}
        for name in used:
            if name not in scope:
                problems.append(f"unknown variable '{name}'")
        for attr in getattr(node, "child_nodelists", ()):
            child = getattr(node, attr, None)
            if child:
                _walk(list(child), scope, problems)
        if isinstance(node, IfNode):
            for _condition, nodelist in node.conditions_nodelists:
                _walk(list(nodelist), scope, problems)


def template_problems(kind: str, source: str) -> list[str]:
    """Every reason the copy cannot be used for `kind` (empty list: fine)."""
    if kind not in VARIABLES:
        return [f"'{kind}' emails have no editable copy"]
    problems = [f"tag '{{% {tag} %}}' is not allowed" for tag in TAG.findall(source) if tag not in ALLOWED_TAGS]
    if problems:
        return sorted(set(problems))
    try:
        template = _engine.from_string(source)
    except TemplateSyntaxError as exc:
        return [f"template error: {exc}"]
    _walk(list(template.nodelist), set(VARIABLES[kind]), problems)
    return sorted(set(problems))


def render_copy(template: MessageTemplate, context: dict[str, Any]) -> tuple[str, str, str]:
    """(subject, text, html) from a stored template; the subject and text are not HTML-escaped."""
    subject = _engine.from_string(template.subject).render(Context(context, autoescape=False))
    text = _engine.from_string(template.text_body).render(Context(context, autoescape=False))
    if template.html_body.strip():
        html = _engine.from_string(template.html_body).render(Context(context))
    else:
        html = linebreaks(escape(text))
    return " ".join(subject.split()), text, html


def stored_template(kind: str, language: str) -> MessageTemplate | None:
    return MessageTemplate.objects.filter(kind=kind, language=language).first()


def sample_context(kind: str, member: Any) -> dict[str, Any]:
    """Made-up values of every variable of the kind, for the admin preview and "send me a test"."""
    from django.conf import settings

    now = timezone.now()
    site = settings.SITE_URL.rstrip("/")
    tier = SimpleNamespace(name="Gold", monthly_price="49.00")
    values: dict[str, Any] = {
        "member": member, "site_url": site, "unsubscribe_url": f"{site}/accounts/unsubscribe/sample/",
        "subscription": SimpleNamespace(tier=tier, current_period_end=now + timedelta(days=7)), "tier": tier,
        "period_end": now + timedelta(days=7), "days_left": 7, "link_days": 14,
        "recap": SimpleNamespace(lessons_finished=5, posts=2, comments=3, benefits_used=["Live Q&A"],
                                 benefits_unused=["1:1 review"]),
        "renew_url": f"{site}/renew/sample/", "grace_until": now + timedelta(days=3), "attempt": 1,
        "payment_url": f"{site}/billing/payment-method/",
        "campaign": SimpleNamespace(name="Spring offer"),
        "coupon": SimpleNamespace(code="SPRING-1234", valid_until=now + timedelta(days=14)), "shop_url": f"{site}/courses/",
        "newsletter": SimpleNamespace(subject="This month at the club"),
        "posts": [SimpleNamespace(title="How I finished the data course", url=f"{site}/community/1/", comments=12)],
        "week_start": (now - timedelta(days=7)).date(),
    }
    return {name: values[name] for name in VARIABLES[kind]}
