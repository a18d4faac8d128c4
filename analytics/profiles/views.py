"""The staff member profile page (用户画像)."""
from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from analytics.profiles.selectors import member_profile
from members.models import User


@staff_member_required
def profile(request: HttpRequest, member_id: int) -> HttpResponse:
    try:
        data = member_profile(member_id=member_id)
    except User.DoesNotExist:
        raise Http404("No such member.") from None
    return render(request, "analytics/profile/profile.html", {"p": data, "member": data.member})


@staff_member_required
def referrals(request: HttpRequest) -> HttpResponse:
    from members.referrals.selectors import referral_report

    return render(request, "analytics/profile/referrals.html", {"report": referral_report()})
