"""Referral pages: the invitation landing (/r/<code>/) and "invite friends"."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from members.models import User
from members.referrals import selectors, services

REFERRAL_COOKIE = "referral_code"


REFERRAL_SALT = "members.referral"


REFERRAL_MAX_AGE = 30 * 24 * 3600  # an invitation counts if the friend signs up within 30 days of clicking


def referral_landing(request: HttpRequest, code: str) -> HttpResponse:
    """The personal invite link /r/<code>/: remember the code (signed, so it can't be forged) and go to sign-up."""
    response = redirect("signup")
    response.set_signed_cookie(
        REFERRAL_COOKIE, code.strip().upper()[:20], salt=REFERRAL_SALT, max_age=REFERRAL_MAX_AGE,
        httponly=True, samesite="Lax",
    )
    return response


def referral_code_from_request(request: HttpRequest) -> str:
    """The invite code the visitor arrived with, or "". The sign-up view passes it to referral_attach_on_signup."""
    try:
        return request.get_signed_cookie(REFERRAL_COOKIE, default="", salt=REFERRAL_SALT, max_age=REFERRAL_MAX_AGE)
    except signing.BadSignature:
        return ""


def attach_referral_after_signup(request: HttpRequest, member: User) -> None:
    """Call right after a new account is created (safe when there is no code)."""
    code = referral_code_from_request(request)
    if code:
        services.referral_attach_on_signup(member=member, code=code)


@login_required
def invite(request: HttpRequest) -> HttpResponse:
    code = services.referral_code_for(member=request.user)
    context = {
        "invite_url": request.build_absolute_uri(reverse("members:referral_landing", args=[code.code])),
        "program": services.referral_program_current(),
        "referrals": list(selectors.member_referrals(member=request.user)),
    }
    return render(request, "members/referrals/invite.html", context)
