"""Staff capabilities: one Django permission each, checked the same way by HTML views and API views.

| capability | permission codename | routes |
|---|---|---|
| read the retention reports | `analytics.view_reports` | /staff/* report pages and CSVs, /staff/members/referrals/, API staff/reports/*, staff/campaigns/*, staff/model-versions/, staff/job-runs/ |
| read member profiles (personal data) | `analytics.view_member_profiles` | /staff/members/<id>/, API staff/members/ |
| run jobs now | `analytics.run_jobs` | API staff/jobs/trigger/ |
| manage campaigns | `analytics.manage_campaigns` | admin pause/activate actions (the admin's own add/change/delete permissions guard the forms) |

Being staff (`is_staff`) only opens the admin door; it grants none of these. A superuser holds them all (Django's
`has_perm`). Routes and their permission are listed once more in tests/analytics/test_permissions_matrix.py.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

VIEW_REPORTS = "analytics.view_reports"
VIEW_MEMBER_PROFILES = "analytics.view_member_profiles"
RUN_JOBS = "analytics.run_jobs"
MANAGE_CAMPAIGNS = "analytics.manage_campaigns"


def has_capability(user: Any, permission: str) -> bool:
    """Active staff holding the permission (directly or through a group), or an active superuser."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return bool(user.is_superuser or (user.is_staff and user.has_perm(permission)))


def capability_required(permission: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """HTML views: anonymous → the login page; signed in without the permission → 403."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not has_capability(request.user, permission):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


class StaffCapability(BasePermission):
    """API views: subclass with `permission` set. Anonymous → 401/403 (not authenticated), others → 403."""

    permission = ""
    message = "You do not have the staff permission this needs."

    def has_permission(self, request: Request, view: Any) -> bool:
        return has_capability(request.user, self.permission)


class CanViewReports(StaffCapability):
    permission = VIEW_REPORTS


class CanViewMemberProfiles(StaffCapability):
    permission = VIEW_MEMBER_PROFILES


class CanRunJobs(StaffCapability):
    permission = RUN_JOBS
