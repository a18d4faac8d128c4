"""Accounts: sign up, profile, one-click unsubscribe. Login, logout and password reset are Django's auth views."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from members.accounts import emails, services
from members.forms import ProfileForm, SignupForm
from members.referrals.views import attach_referral_after_signup


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("members:home")
    form = SignupForm(request.POST or None, initial={"preferred_language": translation.get_language() or "en"})
    if request.method == "POST" and form.is_valid():
        user = services.member_create(
            email=form.cleaned_data["email"], password=form.cleaned_data["password"],
            display_name=form.cleaned_data["display_name"], preferred_language=form.cleaned_data["preferred_language"],
            marketing_opt_in=form.cleaned_data["marketing_opt_in"],
        )
        attach_referral_after_signup(request, user)  # issue 8: invite link → referral + friend's welcome coupon
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, _("Welcome, %(name)s!") % {"name": user.name})
        response = redirect("members:home")
        response.set_cookie("django_language", user.preferred_language)
        return response
    return render(request, "registration/signup.html", {"form": form})


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    member = request.user
    form = ProfileForm(request.POST or None, initial={
        "display_name": member.display_name, "preferred_language": member.preferred_language,
        "time_zone": member.time_zone, "marketing_opt_in": member.marketing_opt_in,
    })
    if request.method == "POST" and form.is_valid():
        services.member_update_profile(member=member, **form.cleaned_data)
        translation.activate(member.preferred_language)
        messages.success(request, _("Your profile is saved."))
        response = redirect("profile")
        response.set_cookie("django_language", member.preferred_language)
        return response
    return render(request, "registration/profile.html", {
        "form": form, "unsubscribe_url": emails.unsubscribe_url(member=member),
    })


@csrf_exempt  # the signed token is the credential; mail clients' one-click POST carries no CSRF cookie
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """The link in every non-transactional email, one per category (reminders, offers, community digest,
    newsletter). The signature proves which member and category it is, so no login is needed. GET shows one button
    and the other categories; POST (also what mail clients send for RFC 8058 one-click, body
    "List-Unsubscribe=One-Click") leaves the category. A GET never changes anything, because link scanners in mail
    systems open every link."""
    found = emails.unsubscribe_token_read(token)
    if found is None:
        return render(request, "registration/unsubscribe.html", {"invalid": True}, status=400)
    member, category = found
    field = emails.EMAIL_CATEGORIES[category]
    done = False
    if request.method == "POST":
        if category == "offers":
            services.member_unsubscribe(member=member)
        else:
            services.member_email_category_set(member=member, category=category, subscribed=False)
        done = True
    labels = emails.email_category_labels()
    return render(request, "registration/unsubscribe.html", {
        "member": member, "done": done, "already": not getattr(member, field) and not done,
        "category": category, "category_label": labels[category],
        "others": [(labels[c], emails.unsubscribe_url(member=member, category=c)) for c in emails.EMAIL_CATEGORIES
                   if c != category and getattr(member, emails.EMAIL_CATEGORIES[c])],
    })
