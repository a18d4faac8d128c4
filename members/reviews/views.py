"""Review pages: a course's reviews (page and htmx fragment), marking a review helpful."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from members import exceptions
from members.models import Course, Review
from members.reviews import selectors, services

# --------------------------------------------------------------------------------------------------------------
# Reviews


def reviews_context(*, request: HttpRequest, course: Course) -> dict[str, object]:
    member = request.user
    reviews = list(selectors.course_reviews(course=course))
    enrolled = getattr(member, "is_authenticated", False) and course.enrollments.filter(member=member).exists()
    return {
        "course": course,
        "rating": selectors.course_rating_summary(course=course),
        "reviews": reviews,
        "my_review": selectors.member_review(member=member, course=course),
        "helpful_ids": selectors.helpful_review_ids(member=member, review_ids=[r.pk for r in reviews]),
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
            services.review_submit(
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
    template = "members/reviews/reviews_page.html#reviews" if request.htmx else "members/reviews/reviews_page.html"
    return render(request, template, context, status=400 if error and not request.htmx else 200)


@login_required
@require_POST
def review_helpful(request: HttpRequest, pk: int) -> HttpResponse:
    review = get_object_or_404(Review.objects.filter(is_hidden=False).select_related("course"), pk=pk)
    try:
        services.review_mark_helpful(review=review, member=request.user)
    except exceptions.MembersError as exc:
        if not request.htmx:
            messages.error(request, exc.message)
    review.refresh_from_db(fields=["helpful_count"])
    if request.htmx:
        return render(request, "members/reviews/_helpful.html", {"review": review, "marked": True})
    return redirect(review.course.get_absolute_url() + "#reviews")
