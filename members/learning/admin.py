"""Admin for rich lessons: a lesson's media, drip days, attachments and quiz; quizzes' questions and choices;
certificates read-only (they are issued by members.learning.services, never typed in)."""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db import models
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from members.models import Certificate, Lesson, LessonAttachment, Quiz, QuizAttempt, QuizChoice, QuizQuestion


class _StoredName:
    """What the file widget shows for a private file: its name, and no link (it has no public URL)."""

    url = "#"

    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        return self.name


class PrivateFileInput(forms.ClearableFileInput):
    def is_initial(self, value: Any) -> bool:  # the default asks for value.url, which a private file refuses
        return bool(value and getattr(value, "name", ""))

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        if context["widget"]["is_initial"]:
            context["widget"]["value"] = _StoredName(str(value.name))
        return context


PRIVATE_FILES = {models.FileField: {"widget": PrivateFileInput}}


class LessonAttachmentInline(admin.TabularInline):
    model = LessonAttachment
    extra = 1
    fields = ("title", "file", "order")
    formfield_overrides = PRIVATE_FILES


class QuizInline(admin.StackedInline):
    model = Quiz
    extra = 0
    max_num = 1
    fields = ("pass_mark", "questions_link")
    readonly_fields = ("questions_link",)

    @admin.display(description=_("questions"))
    def questions_link(self, obj: Quiz) -> str:
        if not obj.pk:
            return str(_("Save the lesson first, then add questions on the quiz's page."))
        return format_html('<a href="{}">{}</a>', reverse("admin:members_quiz_change", args=[obj.pk]),
                           _("Edit %(n)s questions") % {"n": obj.questions.count()})


@admin.register(Lesson)
class LessonAdmin(admin.ModelAdmin):
    list_display = ("__str__", "course", "media_kind", "drip_days", "is_preview")
    list_filter = ("media_kind", "is_preview")
    search_fields = ("title", "course__title")
    list_select_related = ("course",)
    raw_id_fields = ("course",)
    fieldsets = (
        (None, {"fields": ("course", "position", "title", "body", "duration_minutes", "is_preview")}),
        (_("Media"), {"fields": ("media_kind", "media_file", "media_url")}),
        (_("Drip schedule"), {"fields": ("drip_days",)}),
    )
    inlines = [LessonAttachmentInline, QuizInline]
    formfield_overrides = PRIVATE_FILES


class QuizQuestionInline(admin.StackedInline):
    model = QuizQuestion
    extra = 1
    fields = ("position", "text")
    show_change_link = True  # choices are edited on the question's page


@admin.register(Quiz)
class QuizAdmin(admin.ModelAdmin):
    list_display = ("__str__", "pass_mark")
    search_fields = ("lesson__title", "lesson__course__title")
    raw_id_fields = ("lesson",)
    list_select_related = ("lesson__course",)
    inlines = [QuizQuestionInline]


class QuizChoiceInline(admin.TabularInline):
    model = QuizChoice
    extra = 3
    fields = ("text", "is_correct")


@admin.register(QuizQuestion)
class QuizQuestionAdmin(admin.ModelAdmin):
    list_display = ("text", "quiz", "position")
    raw_id_fields = ("quiz",)
    inlines = [QuizChoiceInline]


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Certificate)
class CertificateAdmin(ReadOnlyAdmin):
    list_display = ("member", "course", "issued_at", "verify_link")
    search_fields = ("member__email", "course__title", "code")
    list_select_related = ("member", "course")
    readonly_fields = ("member", "course", "code", "issued_at", "verify_link")
    fields = readonly_fields

    @admin.display(description=_("verification page"))
    def verify_link(self, obj: Certificate) -> str:
        return format_html('<a href="{0}">{0}</a>', obj.get_absolute_url())


@admin.register(QuizAttempt)
class QuizAttemptAdmin(ReadOnlyAdmin):
    list_display = ("member", "quiz", "correct", "total", "passed", "created_at")
    list_filter = ("passed",)
    search_fields = ("member__email",)
    list_select_related = ("member", "quiz__lesson")
    readonly_fields = ("member", "quiz", "correct", "total", "passed", "answers", "created_at")
    fields = readonly_fields
