"""Who must not get an email: per-category opt-outs (the member's choice) and the suppression list (the provider
told us the address bounced or the member complained), plus the bounce/complaint webhook's parsing.

Webhook formats (POST /hooks/email/<provider>/, docs/CAMPAIGNS.md "Bounces and complaints"):

* generic: JSON {"type": "bounce"|"complaint", "email": "...", "bounce_type": "hard"|"soft"} or a list of those,
  signed: header `X-Signature: sha256=<hex HMAC-SHA256 of the raw body with EMAIL_WEBHOOK_SECRET>`.
* postmark: Postmark's bounce and spam-complaint webhooks ({"RecordType": "Bounce", "Type": "HardBounce",
  "Email": ...} / {"RecordType": "SpamComplaint", ...}). Postmark signs nothing; it sends the HTTP Basic credentials
  put in the webhook URL, so the password must equal EMAIL_WEBHOOK_SECRET.

Soft bounces (mailbox full, greylisting) are acknowledged and ignored: the next send may well succeed.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from analytics.models import EmailSuppression, MessageLog

# The unsubscribe category of each non-transactional kind (members.accounts.emails.EMAIL_CATEGORIES). Dunning is about the
# member's own payment and has none: it carries no unsubscribe header. A review invitation is a nudge about the
# member's own learning, so it goes with the reminders.
CATEGORY_BY_KIND = {
    MessageLog.Kind.RENEWAL_REMINDER: "reminders",
    MessageLog.Kind.REVIEW_INVITE: "reminders",
    MessageLog.Kind.CAMPAIGN: "offers",
    MessageLog.Kind.NEWSLETTER: "newsletter",
    MessageLog.Kind.COMMUNITY_DIGEST: "community_digest",
}
POSTMARK_HARD_BOUNCES = {"HardBounce", "BadEmailAddress", "ManuallyDeactivated", "Blocked", "SpamNotification",
                         "DMARCPolicy"}


class WebhookRejected(Exception):
    """Bad signature or credentials (401), or a body that is not the provider's format (400)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class Notice:
    email: str
    reason: str  # EmailSuppression.Reason, or "" for a notice that suppresses nothing (soft bounce)
    detail: dict[str, Any]


def blocked_reason(*, member: Any, kind: str) -> str | None:
    """Why this member must not get this kind of email now, or None."""
    from members.accounts.emails import EMAIL_CATEGORIES

    suppressed = EmailSuppression.objects.filter(email__iexact=member.email).values_list("reason", flat=True).first()
    if suppressed:
        return f"address suppressed ({suppressed})"
    category = CATEGORY_BY_KIND.get(kind)
    if category and not getattr(member, EMAIL_CATEGORIES[category]):
        return f"unsubscribed from {category}"
    return None


def unsubscribe_headers(*, member: Any, kind: str) -> dict[str, str]:
    """RFC 8058 one-click unsubscribe for a non-transactional kind; {} for transactional mail."""
    from members.accounts.emails import unsubscribe_url

    category = CATEGORY_BY_KIND.get(kind)
    if category is None:
        return {}
    return {"List-Unsubscribe": f"<{unsubscribe_url(member=member, category=category)}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def email_suppress(*, email: str, reason: str, source: str, detail: dict[str, Any] | None = None) -> bool:
    """Add the address to the suppression list; False when it already was (the unique email makes a replayed
    webhook a no-op)."""
    try:
        with transaction.atomic():
            EmailSuppression.objects.create(email=email.strip().lower(), reason=reason, source=source,
                                            detail=detail or {})
    except IntegrityError:
        return False
    return True


def _secret() -> bytes:
    secret = getattr(settings, "EMAIL_WEBHOOK_SECRET", "")
    if not secret:
        raise WebhookRejected(401, "EMAIL_WEBHOOK_SECRET is not set: the webhook is closed")
    return secret.encode()


def _json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WebhookRejected(400, "the body is not JSON") from exc


def _generic(body: bytes, headers: dict[str, str]) -> list[Notice]:
    expected = "sha256=" + hmac.new(_secret(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, headers.get("X-Signature", "")):
        raise WebhookRejected(401, "bad signature")
    payload = _json(body)
    items = payload if isinstance(payload, list) else [payload]
    notices = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("email"), str) or "@" not in item["email"]:
            raise WebhookRejected(400, "each notice needs an email")
        kind = item.get("type")
        if kind == "complaint":
            reason = EmailSuppression.Reason.COMPLAINT
        elif kind == "bounce":
            reason = EmailSuppression.Reason.BOUNCE if item.get("bounce_type", "hard") == "hard" else ""
        else:
            raise WebhookRejected(400, "type must be bounce or complaint")
        notices.append(Notice(item["email"], reason, {k: v for k, v in item.items() if isinstance(v, (str, int))}))
    return notices


def _postmark(body: bytes, headers: dict[str, str]) -> list[Notice]:
    auth = headers.get("Authorization", "")
    try:
        _user, _, password = base64.b64decode(auth.removeprefix("Basic ").encode()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        password = ""
    if not auth.startswith("Basic ") or not hmac.compare_digest(password.encode(), _secret()):
        raise WebhookRejected(401, "bad credentials")
    item = _json(body)
    if not isinstance(item, dict) or not isinstance(item.get("Email"), str):
        raise WebhookRejected(400, "not a Postmark bounce or complaint")
    record = item.get("RecordType")
    if record == "SpamComplaint":
        reason = EmailSuppression.Reason.COMPLAINT
    elif record == "Bounce":
        reason = EmailSuppression.Reason.BOUNCE if item.get("Type") in POSTMARK_HARD_BOUNCES else ""
    else:
        raise WebhookRejected(400, "RecordType must be Bounce or SpamComplaint")
    detail = {k: item[k] for k in ("RecordType", "Type", "MessageID", "BouncedAt", "Description") if k in item}
    return [Notice(item["Email"], reason, detail)]


PROVIDERS = {"generic": _generic, "postmark": _postmark}


def webhook_receive(*, provider: str, body: bytes, headers: dict[str, str]) -> dict[str, int]:
    """Verify, parse and apply one webhook delivery: {"suppressed": n, "ignored": m}. Raises WebhookRejected."""
    parse = PROVIDERS.get(provider)
    if parse is None:
        raise WebhookRejected(404, "unknown provider")
    counts = {"suppressed": 0, "ignored": 0}
    for notice in parse(body, headers):
        if notice.reason and email_suppress(email=notice.email, reason=notice.reason, source=provider,
                                            detail=notice.detail):
            counts["suppressed"] += 1
        else:
            counts["ignored"] += 1
    return counts
