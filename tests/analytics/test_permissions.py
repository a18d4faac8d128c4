"""Roles × every staff route, HTML and API (issue 13.8). One permission per capability (analytics/permissions.py);
`is_staff` alone opens nothing. Before: a staff user with no permission read 7 staff API endpoints, passed the job
trigger's check and opened member profiles and the referrals report."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from analytics.models import Campaign
from tests.members.factories import StaffFactory, UserFactory

pytestmark = [pytest.mark.adversarial, pytest.mark.django_db]

VIEW_REPORTS, VIEW_PROFILES, RUN_JOBS, MANAGE_CAMPAIGNS = (
    "view_reports", "view_member_profiles", "run_jobs", "manage_campaigns")
ROLES = ["anonymous", "member", "staff", f"staff+{VIEW_REPORTS}", f"staff+{VIEW_PROFILES}", f"staff+{RUN_JOBS}",
         f"staff+{MANAGE_CAMPAIGNS}", "superuser"]

# (kind, method, path template, permission it needs)
ROUTES = [
    ("html", "get", "/staff/", VIEW_REPORTS),
    ("html", "get", "/staff/cohorts/", VIEW_REPORTS),
    ("html", "get", "/staff/repurchase/", VIEW_REPORTS),
    ("html", "get", "/staff/churn/", VIEW_REPORTS),
    ("html", "get", "/staff/models/", VIEW_REPORTS),
    ("html", "get", "/staff/segments/", VIEW_REPORTS),
    ("html", "get", "/staff/campaigns/", VIEW_REPORTS),
    ("html", "get", "/staff/members/referrals/", VIEW_REPORTS),
    ("html", "get", "/staff/members/{member}/", VIEW_PROFILES),
    ("api", "get", "/api/v1/staff/reports/overview/", VIEW_REPORTS),
    ("api", "get", "/api/v1/staff/reports/risk/", VIEW_REPORTS),
    ("api", "get", "/api/v1/staff/reports/cohorts/", VIEW_REPORTS),
    ("api", "get", "/api/v1/staff/campaigns/", VIEW_REPORTS),
    ("api", "get", "/api/v1/staff/campaigns/{campaign}/", VIEW_REPORTS),
    ("api", "get", "/api/v1/staff/model-versions/", VIEW_REPORTS),
    ("api", "get", "/api/v1/staff/job-runs/", VIEW_REPORTS),
    ("api", "get", "/api/v1/staff/members/", VIEW_PROFILES),
    # An unknown job name: a permitted caller gets 400 (validation), so nothing is enqueued by the test.
    ("api", "post", "/api/v1/staff/jobs/trigger/", RUN_JOBS),
]


def _user(role: str):
    if role == "anonymous":
        return None
    if role == "member":
        return UserFactory()
    if role == "superuser":
        return StaffFactory()
    user = StaffFactory(is_superuser=False)
    if "+" in role:
        user.user_permissions.add(Permission.objects.get(codename=role.split("+")[1],
                                                         content_type__app_label="analytics"))
    return user


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("kind", "method", "path", "needs"), ROUTES, ids=[f"{m} {p}" for _k, m, p, _n in ROUTES])
def test_staff_route_answers_only_roles_with_its_permission(client, role, kind, method, path, needs):
    target = UserFactory()
    campaign = Campaign.objects.create(name="Win back", percent_off=20)
    url = path.format(member=target.pk, campaign=campaign.pk)
    user = _user(role)
    allowed = role == "superuser" or role == f"staff+{needs}"
    if kind == "html":
        if user is not None:
            client.force_login(user)
        response = getattr(client, method)(url)
        if allowed:
            assert response.status_code == 200
        elif user is None:
            assert response.status_code == 302 and "/login" in response["Location"]
        else:
            assert response.status_code == 403
    else:
        api = APIClient()
        if user is not None:
            api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
        response = getattr(api, method)(url, {"job": "no-such-job"} if method == "post" else None, format="json")
        if allowed:
            assert response.status_code == (400 if method == "post" else 200), response.content[:300]
        else:
            assert response.status_code in ((401, 403) if user is None else (403,))


def test_campaign_admin_actions_need_manage_campaigns(client):
    """The admin's change permission lets staff edit a campaign's form; pausing or activating a live campaign (what
    sends coupons) is its own capability."""
    Campaign.objects.create(name="Win back", percent_off=20)
    editor = StaffFactory(is_superuser=False)
    editor.user_permissions.add(*Permission.objects.filter(codename__in=["view_campaign", "change_campaign"]))
    client.force_login(editor)
    page = client.get("/admin/analytics/campaign/")
    assert page.status_code == 200
    assert b"activate_campaigns" not in page.content
    editor.user_permissions.add(Permission.objects.get(codename=MANAGE_CAMPAIGNS))
    assert b"activate_campaigns" in client.get("/admin/analytics/campaign/").content
