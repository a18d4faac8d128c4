"""Writes for member accounts: sign-up, profile, marketing-email preference."""
from __future__ import annotations

from django.utils import timezone

from analytics.tracking import record_event
from members import pagecache
from members.models import (
    User,
)
from members.webhooks import webhook_emit


def member_create(
    *, email: str, password: str | None, display_name: str = "", preferred_language: str = "en",
    marketing_opt_in: bool = False, **extra: object,
) -> User:
    # Consent is opt-in and recorded with its time (PIPL, GDPR): the box at sign-up starts unticked.
    user = User.objects.create_user(
        email=email, password=password, display_name=display_name, preferred_language=preferred_language,
        marketing_opt_in=marketing_opt_in, marketing_consent_at=timezone.now() if marketing_opt_in else None, **extra
    )
    record_event(member=user, kind="signed_up", obj=user)
    webhook_emit(event="member.created", data={"member_id": user.pk, "email": user.email})
    return user


def member_update_profile(
    *, member: User, display_name: str, preferred_language: str, time_zone: str, marketing_opt_in: bool
) -> User:
    previous_opt_in = member.marketing_opt_in
    member.display_name = display_name.strip()
    member.preferred_language = preferred_language
    member.time_zone = time_zone
    member.marketing_opt_in = marketing_opt_in
    if marketing_opt_in != previous_opt_in:
        member.marketing_consent_at = timezone.now() if marketing_opt_in else None
    member.save(update_fields=["display_name", "preferred_language", "time_zone", "marketing_opt_in",
                               "marketing_consent_at"])
    record_event(member=member, kind="profile_updated", obj=member)
    if previous_opt_in != marketing_opt_in:
        record_event(member=member, kind="marketing_opt_in" if marketing_opt_in else "marketing_unsubscribed",
                     obj=member, properties={"via": "profile"})
    return member


def member_unsubscribe(*, member: User, via: str = "link") -> bool:
    """Turn marketing email off. Returns False when it already was, so a second click records nothing."""
    updated = User.objects.filter(pk=member.pk, marketing_opt_in=True).update(marketing_opt_in=False,
                                                                              marketing_consent_at=None)
    member.marketing_opt_in = False
    member.marketing_consent_at = None
    if updated:
        pagecache.bump(member.pk)  # an UPDATE sends no signal: the member's cached pages and API user are stale
        record_event(member=member, kind="marketing_unsubscribed", obj=member, properties={"via": via})
    return bool(updated)


def member_email_category_set(*, member: User, category: str, subscribed: bool, via: str = "link") -> bool:
    """Join or leave one email category (members.accounts.emails.EMAIL_CATEGORIES). Conditional UPDATE: returns False when
    nothing changed, so a repeated one-click POST records nothing."""
    from members.accounts.emails import EMAIL_CATEGORIES

    field = EMAIL_CATEGORIES[category]
    updated = User.objects.filter(pk=member.pk, **{field: not subscribed}).update(**{field: subscribed})
    setattr(member, field, subscribed)
    if updated:
        pagecache.bump(member.pk)  # as above
        record_event(member=member, kind="email_category_joined" if subscribed else "email_category_left",
                     obj=member, properties={"category": category, "via": via})
    return bool(updated)


def sessions_clear_expired() -> int:
    """The session engine's own clear_expired (what `manage.py clearsessions` calls), returning how many rows it
    deleted for a database-backed engine (db, cached_db). Deleting a row also removes its page-cache marker
    (members.pagecache's post_delete receiver)."""
    from importlib import import_module

    from django.conf import settings

    store = import_module(settings.SESSION_ENGINE).SessionStore
    model = store.get_model_class() if hasattr(store, "get_model_class") else None
    expired = model.objects.filter(expire_date__lt=timezone.now()).count() if model is not None else 0
    store.clear_expired()
    return expired
