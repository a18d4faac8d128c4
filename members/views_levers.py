"""Learner pages for the repurchase levers (issue 8): reviews, invite friends, my data."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from members import exceptions, selectors_levers, services_levers
from members.models import Course, Review, User

REFERRAL_COOKIE = "referral_code"
REFERRAL_SALT = "members.referral"
REFERRAL_MAX_AGE = 30 * 24 * 3600  # an invitation counts if the friend signs up within 30 days of clicking


# --------------------------------------------------------------------------------------------------------------
# Reviews


def reviews_context(*, request: HttpRequest, course: Course) -> dict[str, object]:
    member = request.user
    reviews = list(selectors_levers.course_reviews(course=course))
    enrolled = getattr(member, "is_authenticated", False) and course.enrollments.filter(member=member).exists()
    return {
        "course": course,
        "rating": selectors_levers.course_rating_summary(course=course),
        "reviews": reviews,
        "my_review": selectors_levers.member_review(member=member, course=course),
        "helpful_ids": selectors_levers.helpful_review_ids(member=member, review_ids=[r.pk for r in reviews]),
        "can_review": enrolled,
    }


def course_reviews(request: HttpRequest, slug: str) -> HttpResponse:
    """GET: the reviews of a course. POST: submit or edit one's own review (enrolled members only)."""
    course = get_object_or_404(Course.objects.filter(is_published=True), slug=slug)
    error = ""
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect(f"{reverse('login')}?next={course.get_absolute_url()}")
        try:
            services_levers.review_submit(
                member=request.user, course=course, rating=request.POST.get("rating", ""),
                body=request.POST.get("body", "")[:5000],
            )
        except exceptions.MembersError as exc:
            error = exc.message
        else:
            if not request.htmx:
                messages.success(request, _("Thank you for your review."))
                return redirect(course.get_absolute_url() + "#reviews")
    context = {**reviews_context(request=request, course=course), "review_error": error}
    template = "members/levers/reviews_page.html#reviews" if request.htmx else "members/levers/reviews_page.html"
    return render(request, template, context, status=400 if error and not request.htmx else 200)


@login_required
@require_POST
def review_helpful(request: HttpRequest, pk: int) -> HttpResponse:
    review = get_object_or_404(Review.objects.filter(is_hidden=False).select_related("course"), pk=pk)
    try:
        services_levers.review_mark_helpful(review=review, member=request.user)
    except exceptions.MembersError as exc:
        if not request.htmx:
            messages.error(request, exc.message)
    review.refresh_from_db(fields=["helpful_count"])
    if request.htmx:
        return render(request, "members/levers/_helpful.html", {"review": review, "marked": True})
    return redirect(review.course.get_absolute_url() + "#reviews")


# --------------------------------------------------------------------------------------------------------------
# Referrals


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
        services_levers.referral_attach_on_signup(member=member, code=code)


@login_required
def invite(request: HttpRequest) -> HttpResponse:
    code = services_levers.referral_code_for(member=request.user)
    context = {
        "invite_url": request.build_absolute_uri(reverse("members:referral_landing", args=[code.code])),
        "program": services_levers.referral_program_current(),
        "referrals": list(selectors_levers.member_referrals(member=request.user)),
    }
    return render(request, "members/levers/invite.html", context)


# --------------------------------------------------------------------------------------------------------------
# My data


@login_required
def my_data(request: HttpRequest) -> HttpResponse:
    return render(request, "members/levers/my_data.html", {})


@login_required
def my_data_download(request: HttpRequest) -> HttpResponse:
    archive = services_levers.member_export_archive(member=request.user)
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
        return render(request, "members/levers/my_data.html", {"delete_error": True}, status=400)
    services_levers.member_delete(member=member, actor=member)
    logout(request)
    messages.success(request, _("Your account has been deleted."))
    return redirect("members:home")
