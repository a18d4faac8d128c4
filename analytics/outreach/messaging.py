"""Outgoing member email with an exactly-once guarantee held by the database.

Two steps, two guards:

1. `message_create` INSERTs the MessageLog row first. Its `dedupe_key` is unique, so the second insert for the same
   (subscription, period, rule) or (campaign, member) raises IntegrityError and the caller skips: a task that runs
   twice, or on two workers at once, cannot queue the same message twice. The email task is enqueued on commit, so
   a rolled-back run never sends.
2. `message_send` (run by the email task) claims the row with a conditional UPDATE queued → sending. Only one task
   can win that UPDATE, so a duplicate delivery of the task message (acks_late redelivery, the retry sweep firing
   while the first task is still in the queue) sends nothing. A transient SMTP error puts the row back to queued and
   re-raises, so Celery's autoretry (or the sweep) can claim it again.

What is *not* guaranteed: if the process dies between the claim and marking the row sent, nobody knows whether the
SMTP server accepted the message. analytics.recovery decides per kind after SENDING_TIMEOUT: dunning and receipts
are sent again (at least once: a lost one costs a payment or a record), reminders, campaign offers and review
invitations are marked failed (at most once: a second copy costs more than a missing one). docs/SECURITY.md.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from smtplib import SMTPException
from typing import Any

from celery import current_app
from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from analytics.models import Campaign, CampaignAssignment, MessageLog
from analytics.tracking import record_event
from members.commerce.selectors import coupon_get
from members.subscriptions.selectors import subscription_with_benefits, subscription_with_tier

logger = logging.getLogger(__name__)

TRANSIENT_EMAIL_ERRORS: tuple[type[BaseException], ...] = (SMTPException, ConnectionError, TimeoutError)
RENEW_LINK_SALT = "analytics.renew-link"
SEND_TASK = "analytics.outreach.tasks.send_message_email"
# A queued row older than this was orphaned (worker crash between insert and enqueue, broker loss): resend it.
STALE_QUEUED_MINUTES = 10
# ...but not forever: a message about a renewal three days ago is no longer worth sending.
STALE_QUEUED_MAX_AGE = timedelta(days=2)

TEMPLATES = {
    MessageLog.Kind.RENEWAL_REMINDER: "emails/analytics/renewal_reminder",
    MessageLog.Kind.DUNNING: "emails/analytics/dunning",
    MessageLog.Kind.CAMPAIGN: "emails/analytics/campaign_offer",
    MessageLog.Kind.COMMUNITY_DIGEST: "emails/analytics/community_digest",
}
EVENT_KINDS = {
    MessageLog.Kind.RENEWAL_REMINDER: "reminder_sent",
    MessageLog.Kind.DUNNING: "dunning_email_sent",
    MessageLog.Kind.CAMPAIGN: "campaign_email_sent",
    MessageLog.Kind.NEWSLETTER: "newsletter_sent",
    MessageLog.Kind.COMMUNITY_DIGEST: "community_digest_sent",
}


class Suppress(Exception):
    """The message no longer applies (membership ended, campaign finished): mark it failed, never send."""


class Hold(Exception):
    """Not now (campaign paused): put the row back to queued so a later run can send it if it resumes."""


@dataclass(frozen=True)
class SendOutcome:
    status: str  # sent / skipped / suppressed / held
    message_id: int


# ---------------------------------------------------------------------------------------------------- links


def renew_token(*, subscription_id: int) -> str:
    return signing.TimestampSigner(salt=RENEW_LINK_SALT).sign(str(subscription_id))


def renew_token_read(*, token: str) -> int:
    """The subscription id from a renew link; raises signing.SignatureExpired / BadSignature."""
    max_age = timedelta(days=settings.RENEW_LINK_MAX_AGE_DAYS)
    return int(signing.TimestampSigner(salt=RENEW_LINK_SALT).unsign(token, max_age=max_age))


def absolute_url(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def renew_url(*, subscription_id: int) -> str:
    return absolute_url(reverse("acting:renew", kwargs={"token": renew_token(subscription_id=subscription_id)}))


# ---------------------------------------------------------------------------------------------------- create


def message_create(
    *, member: Any, kind: str, dedupe_key: str, context: dict[str, Any] | None = None, when: datetime | None = None
) -> MessageLog | None:
    """Insert the log row (the exactly-once guard) and enqueue the send on commit. None when it already exists."""
    when = when or timezone.now()
    try:
        with transaction.atomic():
            log = MessageLog.objects.create(
                member=member, kind=kind, dedupe_key=dedupe_key, context=context or {}, created_at=when
            )
    except IntegrityError:
        return None
    transaction.on_commit(lambda: enqueue_send(message_id=log.pk))
    return log


def enqueue_send(*, message_id: int) -> None:
    # By name: the tasks module imports this one (a task is a thin door onto message_send), so importing it back
    # would be a cycle. The name is the task's module path.
    current_app.signature(SEND_TASK, args=(message_id,)).delay()


def messages_requeue_stale(*, kinds: list[str], when: datetime | None = None) -> int:
    """The retry sweep: queued rows nobody sent (crash between insert and send) get a new send task. Safe with the
    original task still in flight, because only one task wins the queued → sending claim."""
    when = when or timezone.now()
    ids = list(
        MessageLog.objects.filter(
            kind__in=kinds, status=MessageLog.Status.QUEUED,
            created_at__lt=when - timedelta(minutes=STALE_QUEUED_MINUTES),
            created_at__gte=when - STALE_QUEUED_MAX_AGE,
        ).values_list("pk", flat=True)
    )
    for message_id in ids:
        transaction.on_commit(lambda message_id=message_id: enqueue_send(message_id=message_id))
    return len(ids)


# ---------------------------------------------------------------------------------------------------- send


def _reminder_context(log: MessageLog, when: datetime) -> dict[str, Any]:
    from analytics.outreach.recap import period_recap

    sub = subscription_with_benefits(subscription_id=log.context.get("subscription_id"))
    if sub is None or sub.status not in (sub.Status.TRIALING, sub.Status.ACTIVE):
        raise Suppress("membership is no longer renewing")
    if sub.cancel_at_period_end:
        raise Suppress("member cancelled at period end")
    return {
        "subscription": sub,
        "tier": sub.tier,
        "period_end": sub.current_period_end,
        # Rounded up: a reminder sent 6 days 23 hours before the end says "7 days", as the rule intends.
        "days_left": max(0, math.ceil((sub.current_period_end - when).total_seconds() / 86400)),
        "recap": period_recap(subscription=sub, when=when),
        "renew_url": renew_url(subscription_id=sub.pk),
        "link_days": settings.RENEW_LINK_MAX_AGE_DAYS,
    }


def _dunning_context(log: MessageLog, when: datetime) -> dict[str, Any]:
    sub = subscription_with_tier(subscription_id=log.context.get("subscription_id"))
    if sub is None or sub.status != sub.Status.PAST_DUE:
        raise Suppress("membership is no longer past due")
    return {
        "subscription": sub,
        "tier": sub.tier,
        "grace_until": sub.grace_until,
        "attempt": log.context.get("attempt"),
        "payment_url": absolute_url(reverse("members:billing_payment_method")),
        "renew_url": renew_url(subscription_id=sub.pk),
    }


def _campaign_context(log: MessageLog, when: datetime) -> dict[str, Any]:
    campaign = Campaign.objects.filter(pk=log.context.get("campaign_id")).first()
    if campaign is None or campaign.status == Campaign.Status.FINISHED:
        raise Suppress("campaign finished")
    if campaign.status != Campaign.Status.ACTIVE:
        raise Hold(f"campaign {campaign.status}")
    coupon = coupon_get(coupon_id=log.context.get("coupon_id"))
    if coupon is None or not coupon.is_within_window(when):
        raise Suppress("coupon no longer valid")
    return {"campaign": campaign, "coupon": coupon, "shop_url": absolute_url(reverse("members:course_list"))}


CONTEXT_BUILDERS: dict[str, Callable[[MessageLog, datetime], dict[str, Any]]] = {
    MessageLog.Kind.RENEWAL_REMINDER: _reminder_context,
    MessageLog.Kind.DUNNING: _dunning_context,
    MessageLog.Kind.CAMPAIGN: _campaign_context,
}
# The newsletter and the community digest add their builders from their own modules (they call message_create, so
# this module does not import them back); analytics.apps imports both at start-up.


def render_message(*, log: MessageLog, context: dict[str, Any]) -> tuple[str, str, str]:
    """(subject, text, html) in the member's language: the staff-edited copy for the kind and language when there is
    one (MessageTemplate; a newsletter's own text), else the file templates."""
    from analytics.outreach.suppression import CATEGORY_BY_KIND
    from analytics.outreach.templates import render_copy, stored_template
    from members.accounts.emails import unsubscribe_url

    member = log.member
    language = member.preferred_language or settings.LANGUAGE_CODE
    category = CATEGORY_BY_KIND.get(log.kind)
    if category:
        context = {**context, "unsubscribe_url": unsubscribe_url(member=member, category=category)}
    copy = context.pop("_copy", None) or stored_template(log.kind, language)
    if copy is not None:
        with translation.override(language):
            return render_copy(copy, {**context, "member": member, "site_url": settings.SITE_URL})
    base = TEMPLATES[log.kind]
    with translation.override(language):
        full = {**context, "member": member, "site_url": settings.SITE_URL}
        subject = render_to_string(f"{base}_subject.txt", full).strip().replace("\n", " ")
        text = render_to_string(f"{base}.txt", full)
        html = render_to_string(f"{base}.html", full)
    return subject, text, html


def _release(message_id: int, error: str) -> None:
    MessageLog.objects.filter(pk=message_id, status=MessageLog.Status.SENDING).update(
        status=MessageLog.Status.QUEUED, error=error[:2000]
    )


def message_send(*, message_id: int, when: datetime | None = None) -> SendOutcome:
    when = when or timezone.now()
    # The claim. Whoever flips queued → sending owns this message; everyone else returns without sending.
    if not MessageLog.objects.filter(pk=message_id, status=MessageLog.Status.QUEUED).update(
        status=MessageLog.Status.SENDING, claimed_at=timezone.now(), attempts=F("attempts") + 1
    ):
        return SendOutcome("skipped", message_id)
    log = MessageLog.objects.select_related("member").get(pk=message_id)
    from analytics.outreach.suppression import blocked_reason, unsubscribe_headers

    try:
        blocked = blocked_reason(member=log.member, kind=log.kind)
        if blocked:
            raise Suppress(blocked)
        context = CONTEXT_BUILDERS[log.kind](log, when)
    except Hold as hold:
        _release(message_id, str(hold))
        return SendOutcome("held", message_id)
    except Suppress as reason:
        MessageLog.objects.filter(pk=message_id).update(status=MessageLog.Status.FAILED, error=f"suppressed: {reason}")
        return SendOutcome("suppressed", message_id)
    subject, text, html = render_message(log=log, context=context)
    email = EmailMultiAlternatives(subject=subject, body=text, to=[log.member.email],
                                   headers=unsubscribe_headers(member=log.member, kind=log.kind))
    email.attach_alternative(html, "text/html")
    try:
        email.send()
    except TRANSIENT_EMAIL_ERRORS as exc:
        # Back to queued so the retry (autoretry_for on the task) can claim it again.
        _release(message_id, f"{type(exc).__name__}: {exc}")
        raise
    except Exception as exc:
        MessageLog.objects.filter(pk=message_id).update(status=MessageLog.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    sent_at = timezone.now()
    with transaction.atomic():
        MessageLog.objects.filter(pk=message_id).update(
            status=MessageLog.Status.SENT, sent_at=sent_at, subject=subject[:300], error=""
        )
        if log.kind == MessageLog.Kind.CAMPAIGN:
            CampaignAssignment.objects.filter(
                campaign_id=log.context.get("campaign_id"), member_id=log.member_id, emailed_at__isnull=True
            ).update(emailed_at=sent_at)
        record_event(member=log.member_id, kind=EVENT_KINDS[log.kind], obj=log, occurred_at=sent_at,
                     properties={"dedupe_key": log.dedupe_key}, idempotency_key=f"message-sent:{log.pk}")
    return SendOutcome("sent", message_id)
