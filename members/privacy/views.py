""""My data": download an export, delete the account."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from members.privacy import services


@login_required
def my_data(request: HttpRequest) -> HttpResponse:
    return render(request, "members/privacy/my_data.html", {})


@login_required
def my_data_download(request: HttpRequest) -> HttpResponse:
    archive = services.member_export_archive(member=request.user)
    response = HttpResponse(archive, content_type="application/zip")
    stamp = timezone.now().strftime("%Y%m%d")
    response["Content-Disposition"] = f'attachment; filename="my-data-{stamp}.zip"'
    return response


@login_required
@require_POST
def my_data_delete(request: HttpRequest) -> HttpResponse:
    member = request.user
    if not request.POST.get("confirm") or not member.check_password(request.POST.get("password", "")):
        messages.error(request, _("Please confirm with your password to delete your account."))
        return render(request, "members/privacy/my_data.html", {"delete_error": True}, status=400)
    services.member_delete(member=member, actor=member)
    logout(request)
    messages.success(request, _("Your account has been deleted."))
    return redirect("members:home")
