from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import FileResponse, Http404, HttpRequest
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from analytics.models import (
    Campaign,
    CampaignAssignment,
    EmailSuppression,
    EngagementScore,
    EngagementWeights,
    Event,
    ImportJob,
    JobRun,
    MessageLog,
    MessageTemplate,
    ModelVersion,
    Newsletter,
    PropensityScore,
    RecommendationRun,
    RecommendationSet,
    ReminderRule,
    SegmentAssignment,
    SegmentRun,
)


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("kind", "member", "object_type", "object_id", "occurred_at", "source")
    list_filter = ("kind", "source")
    search_fields = ("member__email", "kind", "idempotency_key")
    raw_id_fields = ("member",)
    date_hierarchy = "occurred_at"
    list_select_related = ("member",)
    show_full_result_count = False


@admin.register(JobRun)
class JobRunAdmin(admin.ModelAdmin):
    list_display = ("job", "status", "as_of", "started_at", "finished_at", "rows")
    list_filter = ("job", "status")
    readonly_fields = [f.name for f in JobRun._meta.fields]


@admin.register(EngagementScore)
class EngagementScoreAdmin(admin.ModelAdmin):
    list_display = ("member", "as_of", "score", "weights_source")
    raw_id_fields = ("member",)
    list_select_related = ("member",)
    search_fields = ("member__email",)
    show_full_result_count = False


@admin.register(SegmentRun)
class SegmentRunAdmin(admin.ModelAdmin):
    list_display = ("as_of", "k", "criterion", "created_at")


@admin.register(SegmentAssignment)
class SegmentAssignmentAdmin(admin.ModelAdmin):
    list_display = ("member", "as_of", "label", "cluster")
    list_filter = ("label",)
    raw_id_fields = ("member", "run")
    list_select_related = ("member",)
    search_fields = ("member__email",)
    show_full_result_count = False


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "algorithm", "as_of", "horizon_days", "is_serving", "created_at")
    list_filter = ("kind", "is_serving", "algorithm")


@admin.register(EngagementWeights)
class EngagementWeightsAdmin(admin.ModelAdmin):
    """Read-only: learned by the nightly run; deleting the newest row makes the next night learn again."""
    list_display = ("as_of", "weights", "detail", "created_at")
    readonly_fields = ("as_of", "created_at", "weights", "detail")

    def has_add_permission(self, request) -> bool:  # noqa: ANN001
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False


@admin.register(PropensityScore)
class PropensityScoreAdmin(admin.ModelAdmin):
    list_display = ("member", "as_of", "probability", "model_version")
    raw_id_fields = ("member", "model_version")
    list_select_related = ("member", "model_version")
    search_fields = ("member__email",)
    show_full_result_count = False


@admin.register(RecommendationRun)
class RecommendationRunAdmin(admin.ModelAdmin):
    list_display = ("id", "as_of", "k", "is_current", "created_at")


@admin.register(RecommendationSet)
class RecommendationSetAdmin(admin.ModelAdmin):
    list_display = ("member", "run", "courses")
    raw_id_fields = ("member", "run")
    list_select_related = ("member",)
    search_fields = ("member__email",)
    show_full_result_count = False

    @admin.display(description=_("courses, best first (id: reason)"))
    def courses(self, obj: RecommendationSet) -> str:
        return ", ".join(f"{entry.course_id}: {entry.reason}" for entry in obj.entries())


@admin.register(ReminderRule)
class ReminderRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "days_before", "billing_period", "min_churn_risk", "segment", "is_active")
    list_filter = ("billing_period", "is_active")
    list_editable = ("is_active",)


class CampaignAssignmentInline(admin.TabularInline):
    model = CampaignAssignment
    fields = ("member", "group", "assigned_at", "coupon", "converted_at", "revenue")
    readonly_fields = fields
    raw_id_fields = ("member",)
    extra = 0
    can_delete = False
    max_num = 0


@admin.action(description=_("Pause selected campaigns (stops sends at once)"), permissions=["manage_campaigns"])
def pause_campaigns(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
    from analytics.outreach.campaigns import campaign_set_status

    for campaign in queryset:
        campaign_set_status(campaign=campaign, status=Campaign.Status.PAUSED)


@admin.action(description=_("Activate selected campaigns"), permissions=["manage_campaigns"])
def activate_campaigns(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
    from analytics.outreach.campaigns import campaign_set_status

    for campaign in queryset:
        try:
            campaign_set_status(campaign=campaign, status=Campaign.Status.ACTIVE)
        except ValidationError as exc:
            modeladmin.message_user(
                request, _("“%(name)s” was not activated: %(reason)s") % {"name": campaign.name,
                                                                          "reason": " ".join(exc.messages)},
                level=messages.ERROR,
            )


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "audience", "holdout_share", "starts_at", "ends_at", "daily_cap")
    list_filter = ("status", "audience")
    search_fields = ("name",)
    actions = (pause_campaigns, activate_campaigns)
    readonly_fields = ("measured_results",)

    def has_manage_campaigns_permission(self, request: HttpRequest) -> bool:
        from analytics.permissions import MANAGE_CAMPAIGNS, has_capability

        return has_capability(request.user, MANAGE_CAMPAIGNS)

    @admin.display(description=_("Measured results"))
    def measured_results(self, obj: Campaign) -> str:
        """Treatment vs holdout with the 95% CI (docs/CAMPAIGNS.md). Conversions are refreshed first."""
        if obj.pk is None:
            return "—"
        from analytics.outreach.campaigns import campaign_results, campaign_track_conversions

        campaign_track_conversions(campaign=obj)
        r = campaign_results(obj)
        rows = [
            (_("Members"), r.treatment.n, r.control.n),
            (_("Conversions"), r.treatment.conversions, r.control.conversions),
            (_("Conversion rate"), _pct(r.treatment.rate), _pct(r.control.rate)),
            (_("Revenue"), r.treatment.revenue, r.control.revenue),
            (_("Revenue per member"), r.treatment.revenue_per_member, r.control.revenue_per_member),
        ]
        body = format_html_join("", "<tr><th>{}</th><td>{}</td><td>{}</td></tr>", rows)
        uplift = "—" if r.uplift is None else format_html(
            "{} pp (95% CI {} to {} pp, {}){}", f"{r.uplift * 100:+.1f}", f"{r.ci_low * 100:+.1f}",
            f"{r.ci_high * 100:+.1f}", r.ci_method, " ✔ significant" if r.significant else "",
        )
        summary = [
            (_("Absolute uplift"), uplift),
            (_("Incremental revenue (net of discounts)"), r.incremental_revenue),
            (_("Discounts given"), r.discount_given),
            (_("Coupons issued / redeemed"), f"{r.coupons_issued} / {r.coupons_redeemed}"),
        ]
        extra = format_html_join("", "<tr><th>{}</th><td colspan='2'>{}</td></tr>", summary)
        return format_html(
            "<table class='campaign-results'><thead><tr><th></th><th>{}</th><th>{}</th></tr></thead>"
            "<tbody>{}{}</tbody></table>", _("Treatment"), _("Control (holdout)"), body, extra,
        )


@admin.register(MessageLog)
class MessageLogAdmin(admin.ModelAdmin):
    list_display = ("member", "kind", "subject", "status", "created_at", "sent_at")
    list_filter = ("kind", "status")
    search_fields = ("member__email", "subject", "dedupe_key")
    raw_id_fields = ("member",)
    list_select_related = ("member",)


# The member's admin page shows the subscription history (every state change is an Event). Added from here because
# members never imports analytics models; analytics may depend on members.
SUBSCRIPTION_EVENT_PREFIXES = ("subscription_", "trial_", "payment_", "reminder_sent", "dunning_email_sent")


class MemberSubscriptionEventInline(admin.TabularInline):
    model = Event
    fk_name = "member"
    verbose_name = _("subscription event")
    verbose_name_plural = _("subscription events (renewals, dunning, cancellations)")
    fields = ("occurred_at", "kind", "object_type", "object_id", "properties")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ("-occurred_at",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Event]:
        match = Q()
        for prefix in SUBSCRIPTION_EVENT_PREFIXES:
            match |= Q(kind__startswith=prefix)
        return super().get_queryset(request).filter(match)


def _add_member_inline() -> None:
    from members.admin import UserAdmin

    if MemberSubscriptionEventInline not in UserAdmin.inlines:
        UserAdmin.inlines = [*UserAdmin.inlines, MemberSubscriptionEventInline]


_add_member_inline()


class ImportJobForm(forms.ModelForm):
    class Meta:
        model = ImportJob
        fields = ("members_file", "products_file", "orders_file", "events_file", "dry_run", "partial", "encoding")

    def clean_encoding(self) -> str:
        from analytics.ingest.files import normalise_encoding

        value = self.cleaned_data.get("encoding", "")
        try:
            normalise_encoding(value)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return value

    def clean(self) -> dict:
        data = super().clean()
        if not any(data.get(f) for f in ImportJob.FILE_FIELDS):
            raise forms.ValidationError(_("Upload at least one of the members, products, orders or events files."))
        return data


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    """Staff upload a platform's export here (CSV in UTF-8 or GBK/GB18030, or .xlsx); a Celery task imports it."""

    form = ImportJobForm
    change_form_template = "admin/analytics/importjob/change_form.html"
    list_display = ("__str__", "created_at", "created_by", "dry_run", "partial", "status", "progress_text",
                    "error_count")
    list_filter = ("status", "dry_run")
    list_select_related = ("created_by",)
    actions = ["import_for_real"]

    def get_readonly_fields(self, request: HttpRequest, obj: ImportJob | None = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("status", "progress_text", "created_by", "created_at", "started_at", "finished_at", "dry_run",
                "partial", "encoding", *ImportJob.FILE_FIELDS, "error_count", "errors_download", "written",
                "report", "error")

    def get_fields(self, request: HttpRequest, obj: ImportJob | None = None) -> tuple[str, ...]:
        if obj is None:
            return ImportJobForm.Meta.fields
        return self.get_readonly_fields(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: ImportJob | None = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    @admin.display(description=_("progress"))
    def progress_text(self, obj: ImportJob) -> str:
        from analytics.ingest.jobs import import_job_progress

        progress = import_job_progress(obj)
        return f"{progress['percent']}% · {progress['stage']}"

    @admin.display(description=_("row errors"))
    def errors_download(self, obj: ImportJob) -> str:
        if not obj.errors_file:
            return "—"
        url = reverse("admin:analytics_importjob_errors", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("Download the rejected rows (CSV: file, line, column, reason)"))

    def save_model(self, request: HttpRequest, obj: ImportJob, form: forms.ModelForm, change: bool) -> None:
        from analytics.ingest.jobs import import_job_create

        created = import_job_create(
            created_by=request.user,
            files={kind: form.cleaned_data.get(f"{kind}_file") for kind in ("members", "products", "orders", "events")},
            dry_run=form.cleaned_data["dry_run"], partial=form.cleaned_data["partial"],
            encoding=form.cleaned_data.get("encoding", ""),
        )
        obj.pk = created.pk

    def get_urls(self) -> list:
        return [
            path("<int:pk>/errors.csv", self.admin_site.admin_view(self.errors_view), name="analytics_importjob_errors"),
            *super().get_urls(),
        ]

    def errors_view(self, request: HttpRequest, pk: int) -> FileResponse:
        job = ImportJob.objects.filter(pk=pk).first()
        if job is None or not self.has_view_permission(request, job) or not job.errors_file:
            raise Http404
        return FileResponse(job.errors_file.open("rb"), as_attachment=True, filename=f"import-{pk}-errors.csv",
                            content_type="text/csv; charset=utf-8")

    @admin.action(description=_("Import the same files for real (not a dry run)"))
    def import_for_real(self, request: HttpRequest, queryset: QuerySet[ImportJob]) -> None:
        from analytics.ingest.jobs import import_job_rerun

        for job in queryset:
            again = import_job_rerun(job=job, created_by=request.user, dry_run=False)
            self.message_user(request, _("Started %(job)s.") % {"job": again})


# ----------------------------------------------------------------------------------------------------------------
# Email copy, newsletters, suppression (analytics/outreach/)


class MessageTemplateForm(forms.ModelForm):
    class Meta:
        model = MessageTemplate
        fields = ("kind", "language", "subject", "text_body", "html_body")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        from analytics.outreach.templates import editable_kinds

        self.fields["kind"].choices = [(k, v) for k, v in MessageLog.Kind.choices if k in editable_kinds()]

    def clean(self) -> dict:
        from analytics.outreach.templates import template_problems

        data = super().clean()
        kind = data.get("kind")
        if kind:
            for part in ("subject", "text_body", "html_body"):
                problems = template_problems(kind, data.get(part) or "")
                if problems:
                    self.add_error(part, "; ".join(problems))
        return data


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    """Staff-edited copy per kind and language; without a row the file templates are used."""

    form = MessageTemplateForm
    list_display = ("kind", "language", "subject", "updated_at", "updated_by")
    list_filter = ("kind", "language")
    readonly_fields = ("variables", "preview")
    actions = ["send_me_a_test"]

    @admin.display(description=_("variables"))
    def variables(self, obj: MessageTemplate) -> str:
        from analytics.outreach.templates import VARIABLES

        if not obj.kind:
            return _("Save once to see the variables of the kind.")
        return format_html_join(mark_safe("<br>"), "<code>{{{{ {} }}}}</code> {}", VARIABLES.get(obj.kind, {}).items())

    @admin.display(description=_("preview"))
    def preview(self, obj: MessageTemplate) -> str:
        if not obj.pk:
            return "—"
        from types import SimpleNamespace

        sample_member = SimpleNamespace(name="Ann", display_name="Ann", email="ann@example.com")
        subject, text, html = self._render_sample(obj, sample_member)
        return format_html('<p><strong>{}</strong></p><iframe sandbox srcdoc="{}" style="width:100%;height:320px;'
                           'border:1px solid #ddd"></iframe><pre style="white-space:pre-wrap">{}</pre>',
                           subject, html, text)

    @staticmethod
    def _render_sample(obj: MessageTemplate, user: object) -> tuple[str, str, str]:
        from django.utils import translation

        from analytics.outreach.templates import render_copy, sample_context

        with translation.override(obj.language):
            return render_copy(obj, sample_context(obj.kind, user))

    def save_model(self, request: HttpRequest, obj: MessageTemplate, form: forms.ModelForm, change: bool) -> None:
        obj.updated_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description=_("Send me a test"))
    def send_me_a_test(self, request: HttpRequest, queryset: QuerySet[MessageTemplate]) -> None:
        from django.core.mail import EmailMultiAlternatives

        for obj in queryset:
            subject, text, html = self._render_sample(obj, request.user)
            email = EmailMultiAlternatives(subject=f"[TEST] {subject}", body=text, to=[request.user.email])
            email.attach_alternative(html, "text/html")
            email.send()
        self.message_user(request, _("Sent %(n)d test email(s) to %(email)s.") % {"n": queryset.count(),
                                                                                 "email": request.user.email})


class NewsletterForm(forms.ModelForm):
    class Meta:
        model = Newsletter
        fields = ("subject", "segment", "text_body", "html_body")

    def clean(self) -> dict:
        from analytics.outreach.templates import template_problems

        data = super().clean()
        for part in ("subject", "text_body", "html_body"):
            problems = template_problems(MessageLog.Kind.NEWSLETTER, data.get(part) or "")
            if problems:
                self.add_error(part, "; ".join(problems))
        return data


@admin.register(Newsletter)
class NewsletterAdmin(admin.ModelAdmin):
    form = NewsletterForm
    list_display = ("subject", "segment", "status", "recipients", "sent_at")
    list_filter = ("status",)
    readonly_fields = ("status", "recipients", "sent_at")
    actions = ["send_to_segment"]

    @admin.action(description=_("Send to its segment"))
    def send_to_segment(self, request: HttpRequest, queryset: QuerySet[Newsletter]) -> None:
        from analytics.outreach.newsletter import NewsletterError, newsletter_send

        for newsletter in queryset:
            try:
                queued = newsletter_send(newsletter=newsletter)
            except NewsletterError as exc:
                self.message_user(request, f"{newsletter}: {exc}", level="error")
                continue
            self.message_user(request, _("%(issue)s: queued %(n)d email(s).") % {"issue": newsletter, "n": queued})


@admin.register(EmailSuppression)
class EmailSuppressionAdmin(admin.ModelAdmin):
    list_display = ("email", "reason", "source", "created_at")
    list_filter = ("reason", "source")
    search_fields = ("email",)
