"""Writes for referrals: a personal code per member; a friend who signs up through it gets a welcome coupon; the
referrer gets a reward coupon once the friend's first paid order has outlived the refund window. Exactly once is held
by a conditional UPDATE (qualified -> rewarded) plus a one-to-one from the referral to the reward coupon.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from analytics.tracking import record_event
from members import exceptions
from members.commerce.services import coupon_issue
from members.models import (
    Coupon,
    Order,
    Referral,
    ReferralCode,
    ReferralProgram,
    User,
)
from members.privacy.services import audit_record

# --------------------------------------------------------------------------------------------------------------
# Errors


class ReferralRefused(exceptions.MembersError):
    code = "referral_refused"
    default_message = _("This invitation cannot be used.")


# --------------------------------------------------------------------------------------------------------------
# Referrals

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O/1/I: codes get read aloud and typed
_GMAIL_DOMAINS = {"gmail.com", "googlemail.com"}


def normalize_email(email: str) -> str:
    """The mailbox an address really delivers to: lowercase, +tag dropped, dots dropped for Gmail-like domains."""
    email = (email or "").strip().lower()
    local, _sep, domain = email.rpartition("@")
    if not _sep:
        return email
    local = local.split("+", 1)[0]
    if domain in _GMAIL_DOMAINS:
        local = local.replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}"


def _same_mailbox_regex(email: str) -> str:
    """A regex matching every stored address that normalises to the same mailbox (used to find duplicates in SQL)."""
    local, _sep, domain = normalize_email(email).rpartition("@")
    if domain == "gmail.com":
        body = r"\.?".join(re.escape(ch) for ch in local)
        domain_re = r"(gmail|googlemail)\.com"
    else:
        body = re.escape(local)
        domain_re = re.escape(domain)
    return rf"^{body}(\+[^@]*)?@{domain_re}$"


def referral_program_current() -> ReferralProgram | None:
    return ReferralProgram.objects.filter(is_active=True).order_by("-created_at").first()


def referral_code_for(*, member: User) -> ReferralCode:
    existing = ReferralCode.objects.filter(member=member).first()
    if existing is not None:
        return existing
    for _attempt in range(5):
        code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))
        try:
            with transaction.atomic():
                return ReferralCode.objects.create(member=member, code=code)
        except IntegrityError:
            # Either the member got a code concurrently (return it) or the random code collided (try again).
            existing = ReferralCode.objects.filter(member=member).first()
            if existing is not None:
                return existing
    raise exceptions.MembersError("Could not allocate a referral code.")


def _refusal_reason(*, referrer: User, member: User) -> str:
    if referrer.pk == member.pk:
        return "You cannot use your own invitation."
    if normalize_email(referrer.email) == normalize_email(member.email):
        return "This account uses the same email address as the member who invited it."
    duplicates = User.objects.exclude(pk=member.pk).filter(email__iregex=_same_mailbox_regex(member.email))
    if duplicates.exists():
        return "An account with this email address already exists."
    if Order.objects.filter(member=member, paid_at__isnull=False).exists():
        return "Invitations are for new members; this account has already bought something."
    return ""


def referral_attach_on_signup(*, member: User, code: str, when: datetime | None = None) -> Referral | None:
    """Attribute a new member to the referrer whose code they arrived with, and give them the welcome coupon.

    Returns None when there is no usable code (unknown, or no active programme). An abusive attribution (self,
    duplicate account by normalised email, an existing buyer) is recorded as a rejected Referral with the reason,
    so staff see attempts, and grants nothing. A member is referred at most once (one-to-one on `referred`).
    """
    when = when or timezone.now()
    code = (code or "").strip().upper()
    program = referral_program_current()
    if not code or program is None:
        return None
    ref_code = ReferralCode.objects.select_related("member").filter(code=code).first()
    if ref_code is None:
        return None
    referrer = ref_code.member
    existing = Referral.objects.filter(referred=member).first()
    if existing is not None:
        return existing
    reason = _refusal_reason(referrer=referrer, member=member)
    try:
        with transaction.atomic():
            referral = Referral.objects.create(
                referrer=referrer, referred=member, code=code, created_at=when,
                status=Referral.Status.REJECTED if reason else Referral.Status.SIGNED_UP, rejection_reason=reason,
            )
            if not reason:
                referral.welcome_coupon = coupon_issue(
                    member=member, percent_off=program.friend_percent_off, valid_days=program.friend_coupon_valid_days,
                    source=Coupon.Source.REFERRAL, description="Welcome discount from a friend's invitation", when=when,
                )
                referral.save(update_fields=["welcome_coupon"])
                User.objects.filter(pk=member.pk).update(acquisition_source=User.AcquisitionSource.REFERRAL)
            audit_record(actor=None, action="referral_rejected" if reason else "referral_attached",
                         target_member_id=member.pk, details={"referrer_id": referrer.pk, "reason": reason})
    except IntegrityError:
        # A concurrent attach for the same member won; theirs stands.
        return Referral.objects.filter(referred=member).first()
    record_event(member=member, kind="referral_signed_up", obj=referral, occurred_at=when,
                 properties={"referrer_id": referrer.pk, "status": referral.status})
    return referral


@dataclass(frozen=True)
class GrantResult:
    rewarded: int
    qualified: int
    rejected: int


def _reward_coupon(*, program: ReferralProgram, referrer: User, when: datetime) -> Coupon:
    common = {"member": referrer, "valid_days": program.reward_valid_days, "source": Coupon.Source.REFERRAL,
              "description": "Thank you for inviting a friend", "when": when}
    if program.reward_kind == ReferralProgram.RewardKind.CREDIT:
        return coupon_issue(amount_off=program.reward_amount, currency=program.reward_currency, **common)
    return coupon_issue(percent_off=program.reward_percent_off, **common)


def referral_grant_rewards(*, now: datetime | None = None) -> GrantResult:
    """Move pending referrals on: friend's first paid order refunded → rejected; still in the refund window →
    qualified; past the window and not refunded → the referrer's reward, exactly once. Safe to run twice."""
    now = now or timezone.now()
    program = referral_program_current()
    if program is None:
        return GrantResult(0, 0, 0)
    window = timedelta(days=program.refund_window_days)
    # The friend's first paid order: a refunded order was paid too, so it counts as the first (and disqualifies).
    first_order = (
        Order.objects.filter(member=OuterRef("referred_id"), paid_at__isnull=False, amount_paid__gt=0)
        .order_by("paid_at", "pk").values("pk")[:1]
    )
    pending = (
        Referral.objects.filter(status__in=[Referral.Status.SIGNED_UP, Referral.Status.QUALIFIED], referred__isnull=False)
        .annotate(first_order_pk=Subquery(first_order))
        .filter(first_order_pk__isnull=False)
    )
    rows = list(pending.values_list("pk", "referrer_id", "referred_id", "first_order_pk"))
    orders = Order.objects.in_bulk([r[3] for r in rows])
    referrers = User.objects.in_bulk([r[1] for r in rows])
    rewarded = qualified = rejected = 0
    for referral_pk, referrer_id, referred_id, order_pk in rows:
        order = orders[order_pk]
        live = Referral.objects.filter(pk=referral_pk, status__in=[Referral.Status.SIGNED_UP, Referral.Status.QUALIFIED])
        if order.status == Order.Status.REFUNDED:
            rejected += live.update(status=Referral.Status.REJECTED, first_order=order,
                                    rejection_reason="The friend's first order was refunded.")
            continue
        if order.status != Order.Status.PAID:
            continue
        if order.paid_at + window > now:
            qualified += live.filter(status=Referral.Status.SIGNED_UP).update(
                status=Referral.Status.QUALIFIED, first_order=order, qualified_at=now)
            continue
        with transaction.atomic():
            # The conditional UPDATE is the exactly-once guard: a second run (or a concurrent worker, which blocks
            # on the row lock and then re-checks the WHERE) finds the status already moved and updates nothing.
            if not live.update(status=Referral.Status.REWARDED, first_order=order, rewarded_at=now,
                               qualified_at=order.paid_at + window):
                continue
            coupon = _reward_coupon(program=program, referrer=referrers[referrer_id], when=now)
            Referral.objects.filter(pk=referral_pk).update(reward_coupon=coupon)
            audit_record(actor=None, action="referral_rewarded", target_member_id=referrer_id,
                         details={"referral_id": referral_pk, "referred_id": referred_id, "coupon_id": coupon.pk})
            record_event(member=referrer_id, kind="referral_rewarded", object_type="referral", object_id=referral_pk,
                         occurred_at=now, properties={"coupon_id": coupon.pk})
        rewarded += 1
    return GrantResult(rewarded=rewarded, qualified=qualified, rejected=rejected)
