"""The member admin's data actions (export, delete through members.privacy.services) and the append-only audit log."""
from __future__ import annotations

import io
import json
import zipfile

from django.contrib import admin, messages
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from members.models import (
    AuditLog,
    User,
)
from members.privacy import services


@admin.action(description=_("Export data (zip of JSON)"), permissions=["view"])
def export_member_data(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[User]) -> HttpResponse:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member in queryset:
            data = services.member_export(member=member, actor=request.user)
            archive.writestr(f"member-{member.pk}.json", json.dumps(data, indent=2, ensure_ascii=False, cls=DjangoJSONEncoder))
    response = HttpResponse(buffer.getvalue(), content_type="application/zip")
    response["Content-Disposition"] = 'attachment; filename="member-export.zip"'
    return response


@admin.action(description=_("Delete (anonymise) member"), permissions=["change"])
def delete_member(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[User]) -> HttpResponse | None:
    targets = list(queryset.filter(anonymized_at__isnull=True).exclude(pk=request.user.pk))
    if request.POST.get("confirm") != "yes":
        return TemplateResponse(request, "members/privacy/admin_delete_confirm.html", {
            **modeladmin.admin_site.each_context(request), "title": _("Delete (anonymise) members"),
            "targets": targets, "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME, "opts": modeladmin.model._meta,
        })
    for member in targets:
        services.member_delete(member=member, actor=request.user)
    modeladmin.message_user(request, _("%(n)d member(s) anonymised.") % {"n": len(targets)}, messages.SUCCESS)
    return None


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ("created_at", "action", "target_member_id", "actor")
    list_filter = ("action",)
    search_fields = ("=target_member_id", "action")
    list_select_related = ("actor",)
    readonly_fields = ("created_at", "action", "target_member_id", "actor", "details")

    # An audit log is append-only: nobody edits or deletes history, including superusers.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditLog | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditLog | None = None) -> bool:
        return False
