"""The learner's pages: home, catalogue and course pages (lesson pages: members/learning/views.py).

Each view has one shape: permission check, form, service or selector call, render. One view serves both the full
page and its htmx fragment (`template#partial`), so every link also works without JavaScript.
"""
from __future__ import annotations

from django.core.paginator import Paginator
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.vary import vary_on_headers

from members.catalogue import selectors as catalogue_selectors
from members.commerce import selectors as commerce_selectors
from members.commerce import services as commerce_services
from members.forms import CatalogueForm
from members.learning import selectors as learning_selectors
from members.learning import views as learning_views
from members.models import (
    Benefit,
    Course,
    Lesson,
    LessonProgress,
    MembershipTier,
    Subscription,
    User,
)
from members.pagecache import cached_page
from members.reviews.selectors import courses_with_ratings

PAGE_SIZE = 12


# --------------------------------------------------------------------------------------------------------------
# Helpers (reads the shared selectors module does not offer; kept here, read-only)


def _tier_includes_all_courses(tier: MembershipTier | None) -> bool:
    return bool(tier and tier.has_benefit(Benefit.Kind.ALL_COURSES))


def _popular_courses(*, exclude_ids: set[int] = frozenset(), limit: int = 8) -> QuerySet[Course]:
    return (
        catalogue_selectors.with_popularity(catalogue_selectors.course_list().exclude(pk__in=exclude_ids))
        .order_by("-popularity", "-published_at", "title")[:limit]
    )


def _continue_lesson(*, member: User) -> tuple[Lesson | None, learning_selectors.CourseProgress | None]:
    """The lesson to continue: in the course touched last, the first lesson not yet completed."""
    enrollment = (
        catalogue_selectors.member_enrollments(member=member).filter(completed_at__isnull=True, last_activity_at__isnull=False)
        .first()
        or catalogue_selectors.member_enrollments(member=member).filter(completed_at__isnull=True).first()
    )
    if enrollment is None:
        return None, None
    lessons = list(enrollment.course.lessons.order_by("position"))
    if not lessons:
        return None, None
    done = set(
        LessonProgress.objects.filter(member=member, lesson__course=enrollment.course, completed_at__isnull=False)
        .values_list("lesson_id", flat=True)
    )
    upcoming = next((lesson for lesson in lessons if lesson.pk not in done), lessons[-1])
    upcoming.course = enrollment.course
    return upcoming, learning_selectors.CourseProgress(done=len(done), total=len(lessons))


def _membership_card(*, member: User) -> Subscription | None:
    """The live subscription, or a canceled one whose paid period has not run out yet."""
    sub = catalogue_selectors.live_subscription(member=member)
    if sub is None:
        latest = catalogue_selectors.latest_subscription(member=member)
        if latest and latest.status == Subscription.Status.CANCELED and latest.current_period_end > timezone.now():
            sub = latest
    return sub


def benefit_table(tiers: list[MembershipTier]) -> list[dict[str, object]]:
    """Rows of the tier comparison: one per benefit kind any tier offers, one cell per tier."""
    kinds = [kind for kind in Benefit.Kind if any(t.has_benefit(kind) for t in tiers)]
    rows = []
    for kind in kinds:
        cells = []
        for tier in tiers:
            benefit = next((b for b in tier.benefits.all() if b.kind == kind), None)
            cells.append(benefit)
        rows.append({"label": kind.label, "kind": kind.value, "cells": cells})
    return rows


# --------------------------------------------------------------------------------------------------------------
# Home


@cached_page
def home(request: HttpRequest) -> HttpResponse:
    tiers = list(catalogue_selectors.tier_list())
    context: dict[str, object] = {"tiers": tiers, "benefit_rows": benefit_table(tiers)}
    if not request.user.is_authenticated:
        context["courses"] = _popular_courses()
        return render(request, "members/home.html", context)
    member = request.user
    lesson, progress = _continue_lesson(member=member)
    context.update({
        "continue_lesson": lesson,
        "continue_progress": progress,
        "subscription": _membership_card(member=member),
        "coupons": commerce_selectors.member_coupons(member=member)[:6],
        "enrollments": catalogue_selectors.member_enrollments(member=member)[:6],
    })
    return render(request, "members/home_member.html", context)


# --------------------------------------------------------------------------------------------------------------
# Catalogue


def _catalogue_queryset(*, form: CatalogueForm, member: User) -> QuerySet[Course]:
    qs = courses_with_ratings(catalogue_selectors.with_popularity(catalogue_selectors.course_list()))
    data = form.cleaned_data if form.is_valid() else {}
    q = (data.get("q") or "").strip()
    if q:
        qs = qs.filter(
            # Either language matches, whichever the member reads in.
            Q(title_en__icontains=q) | Q(title_zh_hans__icontains=q) | Q(title_zh__icontains=q)
            | Q(summary_en__icontains=q) | Q(summary_zh_hans__icontains=q) | Q(tags__icontains=q)
        )
    if data.get("topic"):
        qs = qs.filter(topic=data["topic"])
    if data.get("level"):
        qs = qs.filter(level=data["level"])
    if data.get("price_min") is not None:
        qs = qs.filter(price__gte=data["price_min"])
    if data.get("price_max") is not None:
        qs = qs.filter(price__lte=data["price_max"])
    if data.get("included") and not _tier_includes_all_courses(catalogue_selectors.active_tier(member=member)):
        qs = qs.none()
    order = {
        "newest": ("-published_at", "-created_at"), "popular": ("-popularity", "title"), "price": ("price", "title"),
        "-price": ("-price", "title"), "title": ("title",),
        # Unrated courses last; among equal averages the one with more reviews is the safer bet.
        "rating": (F("avg_rating").desc(nulls_last=True), "-rating_count", "title"),
    }.get(data.get("sort") or "newest", ("-published_at",))
    return qs.order_by(*order, "pk")


@cached_page
@vary_on_headers("HX-Request")
def course_list(request: HttpRequest) -> HttpResponse:
    topics = list(catalogue_selectors.course_list().exclude(topic="").order_by("topic").values_list("topic", "topic_name").distinct())
    form = CatalogueForm(request.GET or None, topics=topics)
    courses = _catalogue_queryset(form=form, member=request.user)
    page = Paginator(courses, PAGE_SIZE).get_page(request.GET.get("page"))
    owned = commerce_selectors.owned_course_ids(member=request.user) if request.user.is_authenticated else set()
    tier = catalogue_selectors.active_tier(member=request.user)
    template = "members/course_list.html#results" if request.htmx and not request.htmx.history_restore_request else "members/course_list.html"
    return render(request, template, {
        "form": form, "page": page, "owned": owned, "all_included": _tier_includes_all_courses(tier),
    })


@cached_page
def course_detail(request: HttpRequest, slug: str) -> HttpResponse:
    course = get_object_or_404(catalogue_selectors.course_list().prefetch_related("lessons"), slug=slug)
    member = request.user
    tier = catalogue_selectors.active_tier(member=member)
    owned = member.is_authenticated and course.pk in commerce_selectors.owned_course_ids(member=member)
    included = _tier_includes_all_courses(tier)
    quote = None
    if member.is_authenticated and not owned and not included:
        quote = commerce_services.price_quote(member=member, course=course)
    same = Q(topic=course.topic) if course.topic else Q(pk__in=[])
    for tag in (course.tags or [])[:5]:
        same |= Q(tags__icontains=f'"{tag}"')
    related = catalogue_selectors.course_list().exclude(pk=course.pk).filter(same).order_by("-published_at")[:4]
    progress = learning_selectors.course_progress(member=member, course=course) if owned or included else None
    return render(request, "members/course_detail.html", {
        "course": course, "owned": owned, "included": included, "quote": quote, "related": related,
        "progress": progress, **learning_views.course_extras(member=member, course=course),
    })
