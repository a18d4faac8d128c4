"""The staff member profile page (用户画像)."""
from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from analytics.permissions import VIEW_MEMBER_PROFILES, VIEW_REPORTS, capability_required
from analytics.profiles.selectors import member_profile


@capability_required(VIEW_MEMBER_PROFILES)
def profile(request: HttpRequest, member_id: int) -> HttpResponse:
    try:
        data = member_profile(member_id=member_id)
    except ObjectDoesNotExist:  # no such member
        raise Http404("No such member.") from None
    return render(request, "analytics/profile/profile.html", {"p": data, "member": data.member})


@capability_required(VIEW_REPORTS)
def referrals(request: HttpRequest) -> HttpResponse:
    from members.referrals.selectors import referral_report

    return render(request, "analytics/profile/referrals.html", {"report": referral_report()})
