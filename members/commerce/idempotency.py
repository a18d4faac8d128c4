"""Idempotency keys for money operations, as Stripe does them.

Every money operation (members.commerce.services.course_purchase; members.subscriptions.services: subscription_start,
subscription_renew, subscription_change_tier, subscription_switch_period, retention_offer_accept) claims its key with
`idempotency_claim` inside the reserve transaction, after locking the member's row:

* a new key: a row in state `started`, committed together with the reservation (order pending, coupon use);
* the same key and the same request, finished: the first result comes back (`Replay`), nothing is charged;
* the same key and the same request, still running (the first is at the provider): `RequestInProgress` (409);
* the same key and a different request: `IdempotencyConflict` (409).

If the reserve transaction rolls back (a refused coupon, an owned course), the row goes with it, so a key is only
spent on a request that reached the provider. The unique (member, operation, key) constraint is the backstop: two
first requests cannot both insert.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from members import exceptions
from members.models import Coupon, IdempotencyRecord, Order, Subscription, User

KEY_MAX_LENGTH = 255


def fingerprint(**parts: Any) -> str:
    """A stable digest of what the request asks for (not of its transport: headers, field order)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def clean_key(key: str | None) -> str:
    """The client's key, or a fresh one when the door sent none (then only the constraints protect)."""
    key = (key or "").strip()
    if len(key) > KEY_MAX_LENGTH or any(ord(ch) < 32 for ch in key):
        raise exceptions.MembersError("The idempotency key must be at most 255 printable characters.")
    return key or f"auto-{uuid.uuid4().hex}"


def lock_member(member: User | int) -> User:
    """Serialise a member's money operations. Call inside the reserve transaction, before any check: a second
    request waits here until the first has committed its reservation, then sees it. Returns the locked row.

    FOR NO KEY UPDATE, not FOR UPDATE: every INSERT of a row pointing at the member (order, ledger row, key) takes
    FOR KEY SHARE on the member row, which FOR UPDATE blocks. A settle step writing the ledger while another request
    held FOR UPDATE on the member and waited for the subscription row deadlocked (10 concurrent upgrades on
    PostgreSQL); NO KEY UPDATE still excludes every other money operation of the member, but not those INSERTs."""
    return User.objects.select_for_update(no_key=True).get(pk=getattr(member, "pk", member))


@dataclass(frozen=True)
class Replay:
    """The first request's result, for a retried one."""

    record: IdempotencyRecord

    @property
    def order(self) -> Order | None:
        return self.record.order

    @property
    def subscription(self) -> Subscription | None:
        return self.record.subscription

    @property
    def coupon(self) -> Coupon | None:
        return self.record.coupon


_REPLAYED_ERRORS: dict[str, type[exceptions.MembersError]] = {
    cls.code: cls for cls in (exceptions.PaymentFailed, exceptions.SubscriptionError, exceptions.MembersError)
}


def idempotency_claim(*, member: User, operation: str, key: str, fingerprint: str) -> IdempotencyRecord | Replay:
    """Claim `key` for this request. Call inside transaction.atomic() after lock_member(member)."""
    existing = (
        IdempotencyRecord.objects.select_related("order", "subscription", "coupon")
        .filter(member=member, operation=operation, key=key).first()
    )
    if existing is None:
        try:
            with transaction.atomic():
                return IdempotencyRecord.objects.create(
                    member=member, operation=operation, key=key, fingerprint=fingerprint
                )
        except IntegrityError:
            # Only reachable without lock_member (or on a database that ignores FOR UPDATE): someone else's
            # identical first request inserted between our read and our write.
            raise exceptions.RequestInProgress() from None
    if existing.fingerprint != fingerprint:
        raise exceptions.IdempotencyConflict()
    if existing.state == IdempotencyRecord.State.STARTED:
        raise exceptions.RequestInProgress()
    if existing.state == IdempotencyRecord.State.FAILED:
        error_class = _REPLAYED_ERRORS.get(existing.error_code, exceptions.MembersError)
        error = error_class(existing.error_message or None)
        error.code = existing.error_code or error.code
        raise error
    return Replay(existing)


def idempotency_attach(record: IdempotencyRecord, **results: Any) -> None:
    """Link what the reservation created (order, subscription, coupon) while the request is still running."""
    for name, value in results.items():
        setattr(record, name, value)
    IdempotencyRecord.objects.filter(pk=record.pk).update(**results)


def idempotency_succeed(record: IdempotencyRecord, **results: Any) -> None:
    now = timezone.now()
    for name, value in results.items():
        setattr(record, name, value)
    record.state = IdempotencyRecord.State.SUCCEEDED
    record.completed_at = now
    IdempotencyRecord.objects.filter(pk=record.pk).update(state=record.state, completed_at=now, **results)


def idempotency_fail(record: IdempotencyRecord, *, error: exceptions.MembersError) -> None:
    """Store the failure so a retry with the same key is told the same thing (and is not charged again)."""
    now = timezone.now()
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        state=IdempotencyRecord.State.FAILED, completed_at=now, error_code=error.code[:40],
        error_message=str(error.message)[:300],
    )
    record.state = IdempotencyRecord.State.FAILED
