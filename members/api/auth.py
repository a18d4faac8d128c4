"""API tokens and the profile update the API needs.

Tokens are DRF's authtoken rows (one per user; admins revoke them in Django admin). Issuing re-checks the password
whenever one is given, so a stolen session cookie alone cannot mint a long-lived token for someone else's email.
"""
from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from django.db import transaction
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated

from analytics.tracking import record_event
from members.models import User

PROFILE_FIELDS = ("display_name", "preferred_language", "time_zone", "marketing_opt_in", "country")


def user_for_token_request(*, current: Any, email: str, password: str | None) -> User:
    """The user a token request is for: the logged-in user, or whoever the email and password identify."""
    if getattr(current, "is_authenticated", False):
        if password is not None and not current.check_password(password):
            raise AuthenticationFailed("The password is not correct.")
        return current
    if not email or password is None:
        raise NotAuthenticated("Send email and password, or log in first.")
    user = authenticate(username=email.lower(), password=password)
    if user is None or not user.is_active:
        raise AuthenticationFailed("The email or password is not correct.")
    return user


def api_token_issue(*, user: User) -> Token:
    token, _created = Token.objects.get_or_create(user=user)
    return token


def api_token_revoke(*, user: User) -> int:
    deleted, _ = Token.objects.filter(user=user).delete()
    return deleted


def profile_update(*, member: User, **changes: Any) -> User:
    """Update the member's own profile fields; records the change of marketing consent as an event."""
    changes = {key: value for key, value in changes.items() if key in PROFILE_FIELDS}
    if not changes:
        return member
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=member.pk)
        consent_before = locked.marketing_opt_in
        for key, value in changes.items():
            setattr(locked, key, value)
        locked.save(update_fields=list(changes))
        if "marketing_opt_in" in changes and changes["marketing_opt_in"] != consent_before:
            record_event(member=locked, kind="marketing_consent_changed", obj=locked,
                         properties={"opt_in": changes["marketing_opt_in"]})
    return locked
