from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from members import selectors
from members.models import Course, Order


def home(request: HttpRequest) -> HttpResponse:
    context = {
        "courses": selectors.course_list()[:8],
        "tiers": selectors.tier_list(),
        "subscription": selectors.live_subscription(member=request.user),
    }
    return render(request, "members/home.html", context)


def course_list(request: HttpRequest) -> HttpResponse:
    return render(request, "members/course_list.html", {"courses": selectors.course_list()})


def course_detail(request: HttpRequest, slug: str) -> HttpResponse:
    course = get_object_or_404(Course.objects.filter(is_published=True), slug=slug)
    return render(request, "members/course_detail.html", {"course": course})


def lesson_detail(request: HttpRequest, slug: str, position: int) -> HttpResponse:
    course = get_object_or_404(Course.objects.filter(is_published=True), slug=slug)
    lesson = get_object_or_404(course.lessons, position=position)
    return render(request, "members/lesson_detail.html", {"course": course, "lesson": lesson})


@login_required
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_object_or_404(selectors.member_orders(member=request.user), pk=pk)
    return render(request, "members/order_detail.html", {"order": order})


__all__ = ["home", "course_list", "course_detail", "lesson_detail", "order_detail", "Order"]
