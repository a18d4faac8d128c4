"""API tokens: issue (password re-checked) and revoke.

Tokens are DRF's authtoken rows (one per user; admins revoke them in Django admin). A logged-in session (CSRF
enforced by SessionAuthentication) gets its own token directly; otherwise email and password are required, and a
password sent alongside a session is re-checked too.
"""
from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated

from members.models import User


def user_for_token_request(*, current: Any, email: str, password: str | None, request: Any = None) -> User:
    """The user a token request is for: the logged-in user, or whoever the email and password identify."""
    if getattr(current, "is_authenticated", False):
        if password is not None and not current.check_password(password):
            raise AuthenticationFailed("The password is not correct.")
        return current
    if not email or password is None:
        raise NotAuthenticated("Send email and password, or log in first.")
    # The request lets django-axes count the failure against this client and refuse a locked-out one.
    user = authenticate(getattr(request, "_request", request), username=email.lower(), password=password)
    if user is None or not user.is_active:
        raise AuthenticationFailed("The email or password is not correct.")
    return user


def api_token_issue(*, user: User) -> Token:
    token, _created = Token.objects.get_or_create(user=user)
    return token


def api_token_revoke(*, user: User) -> int:
    deleted, _ = Token.objects.filter(user=user).delete()
    return deleted

