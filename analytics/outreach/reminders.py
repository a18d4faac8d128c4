"""Renewal reminders and dunning emails: who gets which message, and what it says about their period.

Rule semantics. Each active ReminderRule matches live (trialing/active) subscriptions whose period ends within
`days_before` days and that fit its billing period, churn-risk floor and segment. A subscription inside the windows
of several rules (5 days left matches both the 14-day and the 7-day rule) gets the *tightest* matching rule only, so
a member who subscribed late is not sent three reminders on one morning; a missed daily run is caught up the next
day because each rule owns the whole window down to the next tighter rule.

Exactly-once is not decided here: messaging.message_create inserts the MessageLog row whose dedupe_key
"reminder:<sub>:<period_end>:<rule>" is unique, and a duplicate insert is the signal to skip.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Model, OuterRef, Q, Subquery
from django.utils import timezone

from analytics.models import (
    MessageLog,
    PropensityScore,
    ReminderRule,
    SegmentAssignment,
)
from analytics.outreach.messaging import message_create, messages_requeue_stale
from members.subscriptions.billing import subscriptions_past_due
from members.subscriptions.selectors import subscriptions_renewing_between


@dataclass(frozen=True)
class ReminderRunSummary:
    queued: int
    already_sent: int
    requeued: int

    @property
    def rows(self) -> int:
        return self.queued


# ---------------------------------------------------------------------------------------------------- scores


def _latest_by_member(model: type[Model], field_name: str, member_ids: list[int] | None) -> dict[int, Any]:
    """Each member's `field_name` from their most recent `model` row (the correlated subquery uses (member, -as_of)).
    With member_ids, asked 500 ids at a time."""
    latest = model.objects.filter(member=OuterRef("member")).order_by("-as_of", "-pk").values("pk")[:1]
    qs = model.objects.filter(pk=Subquery(latest))
    if member_ids is None:
        return dict(qs.values_list("member_id", field_name))
    result: dict[int, Any] = {}
    for start in range(0, len(member_ids), 500):
        chunk = member_ids[start:start + 500]
        result.update(dict(qs.filter(member_id__in=chunk).values_list("member_id", field_name)))
    return result


def latest_probability_by_member(member_ids: list[int] | None = None) -> dict[int, float]:
    """Each member's most recent PropensityScore.probability."""
    return _latest_by_member(PropensityScore, "probability", member_ids)


def latest_segment_by_member(member_ids: list[int] | None = None) -> dict[int, str]:
    """Each member's most recent SegmentAssignment.label."""
    return _latest_by_member(SegmentAssignment, "label", member_ids)


# ---------------------------------------------------------------------------------------------------- recap


# ---------------------------------------------------------------------------------------------------- selection


def reminder_key(*, subscription: Any, rule: ReminderRule) -> str:
    return f"reminder:{subscription.pk}:{subscription.current_period_end:%Y%m%d}:{rule.pk}"


def reminders_due(*, when: datetime | None = None) -> list[tuple[Any, ReminderRule]]:
    """(subscription, tightest matching rule) pairs. Already-sent pairs are included; the unique key drops them."""
    when = when or timezone.now()
    rules = list(ReminderRule.objects.filter(is_active=True).order_by("days_before", "pk"))
    if not rules:
        return []
    horizon = when + timedelta(days=max(rule.days_before for rule in rules))
    subs = list(subscriptions_renewing_between(after=when, until=horizon))
    member_ids = [sub.member_id for sub in subs]
    probabilities = latest_probability_by_member(member_ids) if any(r.min_churn_risk is not None for r in rules) else {}
    segments = latest_segment_by_member(member_ids) if any(r.segment for r in rules) else {}
    due: list[tuple[Any, ReminderRule]] = []
    for sub in subs:
        left = sub.current_period_end - when
        for rule in rules:  # ascending days_before: the first match is the tightest
            if left > timedelta(days=rule.days_before):
                continue
            if rule.billing_period != "any" and rule.billing_period != sub.billing_period:
                continue
            if rule.min_churn_risk is not None:
                probability = probabilities.get(sub.member_id)
                if probability is None or 1.0 - probability < rule.min_churn_risk:
                    continue
            if rule.segment and segments.get(sub.member_id) != rule.segment:
                continue
            due.append((sub, rule))
            break
    return due


def _messages_queue(
    *, kind: str, messages: Iterable[tuple[Any, str, dict[str, Any]]], when: datetime
) -> ReminderRunSummary:
    """Queue one message per (member, dedupe_key, context), then sweep this kind's stale queued rows.
    message_create returns None for a key that exists already (sent or queued by an earlier run): counted, skipped."""
    queued = already = 0
    for member, dedupe_key, context in messages:
        if message_create(member=member, kind=kind, dedupe_key=dedupe_key, context=context, when=when) is None:
            already += 1
        else:
            queued += 1
    requeued = messages_requeue_stale(kinds=[kind], when=when)
    return ReminderRunSummary(queued=queued, already_sent=already, requeued=requeued)


def reminders_send(*, when: datetime | None = None) -> ReminderRunSummary:
    when = when or timezone.now()
    return _messages_queue(
        kind=MessageLog.Kind.RENEWAL_REMINDER,
        messages=(
            (sub.member, reminder_key(subscription=sub, rule=rule),
             {"subscription_id": sub.pk, "rule_id": rule.pk, "period_end": sub.current_period_end.isoformat()})
            for sub, rule in reminders_due(when=when)
        ),
        when=when,
    )


def dunning_key(*, subscription: Any) -> str:
    return f"dunning:{subscription.pk}:{subscription.current_period_end:%Y%m%d}:{subscription.renewal_attempts}"


def dunning_emails_send(*, when: datetime | None = None) -> ReminderRunSummary:
    """One email per failed charge attempt of a past_due membership (the key carries the attempt number)."""
    when = when or timezone.now()
    past_due = subscriptions_past_due(when=when).filter(Q(grace_until__isnull=True) | Q(grace_until__gt=when))
    return _messages_queue(
        kind=MessageLog.Kind.DUNNING,
        messages=(
            (sub.member, dunning_key(subscription=sub), {"subscription_id": sub.pk, "attempt": sub.renewal_attempts})
            for sub in past_due
        ),
        when=when,
    )
