"""Writes for the repurchase levers (issue 8): course reviews, member referrals, and members' own data.

Reviews: one per member per course (a unique constraint; a concurrent second submit turns into an update).
Referrals: a personal code per member; a friend who signs up through it gets a welcome coupon; the referrer gets a
reward coupon once the friend's first paid order has outlived the refund window. Exactly once is held by a
conditional UPDATE (qualified → rewarded) plus a one-to-one from the referral to the reward coupon.
Data: export discovers every model that points at the member, so a model added next year is exported without
anyone remembering to; deletion anonymises the account, keeps the ledger, and removes the rest.
"""
from __future__ import annotations

import io
import json
import re
import secrets
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, models, transaction
from django.db.models import F, OuterRef, Subquery
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from analytics.tracking import record_event
from members import exceptions
from members.models import (
    AuditLog,
    Coupon,
    Course,
    Enrollment,
    Order,
    Referral,
    ReferralCode,
    ReferralProgram,
    Review,
    ReviewHelpful,
    Subscription,
    SubscriptionChange,
    User,
)
from members.services import coupon_issue, subscription_record

# --------------------------------------------------------------------------------------------------------------
# Errors


class ReviewNotAllowed(exceptions.MembersError):
    code = "review_not_allowed"
    default_message = _("Only members enrolled in this course can review it.")


class InvalidRating(exceptions.MembersError):
    code = "invalid_rating"
    default_message = _("A rating is a whole number from 1 to 5.")


class ReferralRefused(exceptions.MembersError):
    code = "referral_refused"
    default_message = _("This invitation cannot be used.")


# --------------------------------------------------------------------------------------------------------------
# Audit


def audit_record(*, actor: User | None, action: str, target_member_id: int | None, details: dict[str, Any] | None = None) -> AuditLog:
    # Never put an email or a name in details: the audit row outlives the anonymisation it records.
    return AuditLog.objects.create(
        actor=actor if actor is not None and actor.pk else None,
        action=action,
        target_member_id=target_member_id,
        details=details or {},
    )


# --------------------------------------------------------------------------------------------------------------
# Reviews


def review_submit(*, member: User, course: Course, rating: int, body: str = "", when: datetime | None = None) -> Review:
    """Create or edit the member's review of a course. Only enrolled members may review."""
    when = when or timezone.now()
    try:
        rating = int(rating)
    except (TypeError, ValueError):
        raise InvalidRating() from None
    if not 1 <= rating <= 5:
        raise InvalidRating()
    if not Enrollment.objects.filter(member=member, course=course).exists():
        raise ReviewNotAllowed()
    body = (body or "").strip()
    try:
        # The savepoint lets a losing concurrent INSERT fail without poisoning an outer transaction.
        with transaction.atomic():
            review = Review.objects.create(
                member=member, course=course, rating=rating, body=body, created_at=when, updated_at=when
            )
        created = True
    except IntegrityError:
        # Two submits raced (double click, two tabs): the unique constraint let exactly one INSERT through, and
        # this one becomes an edit of that row.
        Review.objects.filter(member=member, course=course).update(rating=rating, body=body, updated_at=when)
        review = Review.objects.get(member=member, course=course)
        created = False
    record_event(
        member=member, kind="course_reviewed" if created else "course_review_updated", obj=course, occurred_at=when,
        properties={"rating": rating, "review_id": review.pk, "has_text": bool(body)},
    )
    return review


def review_mark_helpful(*, review: Review, member: User) -> bool:
    """Mark a review helpful (once per member; not one's own). Returns whether a new mark was added."""
    if review.member_id == member.pk:
        raise exceptions.MembersError(_("You cannot mark your own review as helpful."))
    try:
        with transaction.atomic():
            ReviewHelpful.objects.create(review=review, member=member)
            # Incremented in SQL so concurrent marks from different members never lose an update.
            Review.objects.filter(pk=review.pk).update(helpful_count=F("helpful_count") + 1)
    except IntegrityError:
        return False
    record_event(member=member, kind="review_marked_helpful", obj=review, properties={"course_id": review.course_id})
    return True


def review_hide(*, review: Review, actor: User, hidden: bool = True) -> Review:
    """Staff hide (or show again) a review. Hidden reviews drop out of averages and lists."""
    with transaction.atomic():
        Review.objects.filter(pk=review.pk).update(is_hidden=hidden)
        audit_record(actor=actor, action="review_hidden" if hidden else "review_shown", target_member_id=review.member_id,
                     details={"review_id": review.pk, "course_id": review.course_id})
    review.is_hidden = hidden
    return review


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


# --------------------------------------------------------------------------------------------------------------
# Members' own data

# Never leaves the database, even for the member: it would only help someone who steals the archive.
_EXPORT_EXCLUDED_FIELDS = {"password", "token", "key"}


def member_relations() -> list[tuple[type[models.Model], models.Field]]:
    """Every (model, field) where a ForeignKey/OneToOne points at the user model, found at run time."""
    user_model = apps.get_model(settings.AUTH_USER_MODEL)
    found = []
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if (
                getattr(field, "concrete", False)
                and field.is_relation
                and (field.many_to_one or field.one_to_one)
                and field.related_model is user_model
            ):
                found.append((model, field))
    return found


def _row(obj: models.Model) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        if field.name in _EXPORT_EXCLUDED_FIELDS:
            continue
        data[field.attname] = field.value_from_object(obj)
    return data


def member_export(*, member: User, actor: User | None = None) -> dict[str, Any]:
    """Everything the platform holds about the member, keyed by model label ("app.Model"), JSON-serialisable."""
    models_data: dict[str, list[dict[str, Any]]] = {}
    for model, field in member_relations():
        label = model._meta.label
        rows = [_row(obj) for obj in model._default_manager.filter(**{field.name: member}).order_by("pk")]
        key = label if field.name in ("member", "author", "recipient", "user") else f"{label}.{field.name}"
        models_data.setdefault(key, []).extend(rows)
    # Audit rows refer to the member by a plain integer (so they outlive deletion); they are still about them.
    models_data.setdefault(AuditLog._meta.label, []).extend(
        _row(a) for a in AuditLog.objects.filter(target_member_id=member.pk).order_by("pk")
    )
    export = {
        "format": "learning-club-member-export/1",
        "exported_at": timezone.now(),
        "member": _row(member),
        "models": models_data,
    }
    audit_record(actor=actor or member, action="member_exported", target_member_id=member.pk,
                 details={"models": sorted(models_data), "rows": sum(len(v) for v in models_data.values())})
    return json.loads(json.dumps(export, cls=DjangoJSONEncoder))


def member_export_archive(*, member: User, actor: User | None = None) -> bytes:
    """The export as a zip holding data.json (machine-readable) and a short README."""
    data = member_export(member=member, actor=actor)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data.json", json.dumps(data, indent=2, ensure_ascii=False))
        archive.writestr(
            "README.txt",
            "Everything Learning Club holds about your account, as JSON.\n"
            "'member' is your account; 'models' lists every record that refers to you, by type.\n",
        )
    return buffer.getvalue()


# Rows that stay, attached to the anonymised account, because accounting and aggregate reports need them (they hold
# no free text about the person once the account itself is anonymised). Everything else pointing at the member is
# deleted, including models added later: forgetting is the default, keeping is the documented exception.
RETAINED_ON_DELETE = {
    "members.Order", "members.CouponRedemption", "members.Subscription", "members.Coupon", "members.Enrollment",
    "members.LessonProgress", "members.Referral", "members.AuditLog", "members.SubscriptionChange",
}
# analytics forgets through analytics.privacy.member_forget (it owns those tables).
DELEGATED_APPS = {"analytics"}
DELETED_DISPLAY_NAME = "Deleted member"


@dataclass(frozen=True)
class DeletionResult:
    member_id: int
    deleted: dict[str, int]
    subscriptions_canceled: int


@transaction.atomic
def member_delete(*, member: User, actor: User | None, when: datetime | None = None) -> DeletionResult:
    """Delete a member's account: anonymise the user row, keep the ledger, remove personal content and analytics.

    Posts and comments stay in their threads (other members' comments and reactions under them are theirs), but
    community detaches them and removes their text (community.services.author_erase). Other personal content
    (reactions, follows, notifications, reviews, payment methods, referral code) is deleted rather than reassigned:
    the anonymised row is the "deleted member" that retained orders point at.
    """
    from analytics.privacy import (
        member_forget,  # the one analytics write entry besides record_event; see module doc
    )
    from community.services import (
        author_erase,  # community owns its tables, so it decides how a deleted author's posts and comments stay
    )

    when = when or timezone.now()
    member = User.objects.select_for_update().get(pk=member.pk)
    member_id = member.pk

    # At most one live subscription per member (a unique constraint), so this is one row or none.
    canceled = 0
    for sub in Subscription.objects.select_for_update().filter(member_id=member_id, status__in=Subscription.LIVE_STATUSES):
        sub.status, sub.canceled_at, sub.ended_at = Subscription.Status.CANCELED, when, when
        sub.cancel_at_period_end, sub.cancellation_reason = False, Subscription.CancellationReason.OTHER
        sub.save(update_fields=["status", "canceled_at", "ended_at", "cancel_at_period_end", "cancellation_reason"])
        subscription_record(sub, SubscriptionChange.Kind.ACCOUNT_DELETED, when)
        canceled += 1
    Subscription.objects.filter(member_id=member_id).exclude(cancellation_note="").update(cancellation_note="")
    # Unused personal coupons die with the account; used ones stay for the redemption ledger.
    Coupon.objects.filter(assigned_member_id=member_id).update(is_active=False, description="")

    # Helpful marks they gave: take their votes off others' reviews before the marks go.
    for review_id in ReviewHelpful.objects.filter(member_id=member_id).values_list("review_id", flat=True):
        Review.objects.filter(pk=review_id, helpful_count__gt=0).update(helpful_count=F("helpful_count") - 1)

    forget = member_forget(member_id)
    # Before the loop below: once detached, no post or comment points at the member, so none is deleted with them.
    anonymised = author_erase(member_id=member_id)
    deleted: dict[str, int] = {}
    for model, field in member_relations():
        label = model._meta.label
        if label in RETAINED_ON_DELETE or model._meta.app_label in DELEGATED_APPS or model is User:
            continue
        count, _ = model._default_manager.filter(**{field.name: member_id}).delete()
        if count:
            deleted[f"{label}.{field.name}"] = count
    # The admin's history names the edited object by its str() (the email): blank it for this member.
    LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(User), object_id=str(member_id)
    ).update(object_repr=DELETED_DISPLAY_NAME, change_message="")

    member.email = f"deleted-{member_id}@deleted.invalid"
    member.display_name = DELETED_DISPLAY_NAME
    member.country = ""
    member.time_zone = "UTC"
    member.external_id = None
    member.marketing_opt_in = False
    member.is_active = False
    member.is_staff = False
    member.is_superuser = False
    member.anonymized_at = when
    member.set_unusable_password()
    member.save()
    member.groups.clear()
    member.user_permissions.clear()

    details = {"deleted": deleted, "subscriptions_canceled": canceled, "community_anonymised": anonymised,
               "analytics": dict(forget.__dict__.items())}
    audit_record(actor=actor, action="member_deleted", target_member_id=member_id, details=details)
    return DeletionResult(member_id=member_id, deleted=deleted, subscriptions_canceled=canceled)

