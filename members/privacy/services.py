"""Writes for members' own data: export (JSON/zip), deletion (anonymise), and the audit log of both."""
from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

from analytics.tracking import member_forget
from members.models import (
    AuditLog,
    Coupon,
    Review,
    ReviewHelpful,
    Subscription,
    SubscriptionChange,
    User,
)
from members.subscriptions.services import subscription_record


def audit_record(*, actor: User | None, action: str, target_member_id: int | None, details: dict[str, Any] | None = None) -> AuditLog:
    # Never put an email or a name in details: the audit row outlives the anonymisation it records.
    return AuditLog.objects.create(
        actor=actor if actor is not None and actor.pk else None,
        action=action,
        target_member_id=target_member_id,
        details=details or {},
    )


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


# analytics forgets through analytics.tracking.member_forget (it owns those tables).
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
