"""The learner-facing "recommended for you" row, loaded into the home page by htmx (members never import analytics).

Cards come from the member's current RecommendationRun; with none, the most popular published courses the member
does not own stand in. Rendering a card records an impression; a card's link goes through `click`, which records
the click and redirects to the course, so click-through is measured per rank.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from analytics.models import Recommendation
from analytics.tracking import record_event
from members.catalogue import selectors as catalogue_selectors
from members.commerce import selectors as commerce_selectors
from members.models import Course

ROW_SIZE = 4


# Reason codes written by analytics/ml/recommendations.py, translated here (the stored reason_text is English).
REASON_WITH_COURSE = {
    "because_you_finished": gettext_lazy("Because you finished “%(course)s”"),
    "similar_to_purchase": gettext_lazy("Similar to “%(course)s”, which you have"),
    "rated_highly_also_liked": gettext_lazy("Members who rated “%(course)s” highly also liked this"),
}


@dataclass(frozen=True)
class RecommendationCard:
    course: Course
    rank: int
    reason: str
    source: str  # "model" or "popular"
    run_id: int | None = None


def _cards(*, member: object) -> list[RecommendationCard]:
    owned: set[int] = set()
    if getattr(member, "is_authenticated", False):
        owned = commerce_selectors.owned_course_ids(member=member)
        recs = list(
            Recommendation.objects.filter(member=member, run__is_current=True, course__is_published=True)
            .exclude(course_id__in=owned)
            .select_related("course", "reason_course")
            .order_by("rank")[:ROW_SIZE]
        )
        if recs:
            cards = []
            for position, rec in enumerate(recs, start=1):
                if rec.reason_course is not None and rec.reason in REASON_WITH_COURSE:
                    reason = REASON_WITH_COURSE[rec.reason] % {"course": rec.reason_course.title}
                elif rec.reason_course is not None:
                    reason = _("Because you finished “%(course)s”") % {"course": rec.reason_course.title}
                elif rec.reason_text:
                    reason = rec.reason_text
                else:
                    reason = _("Popular with members like you")
                cards.append(RecommendationCard(course=rec.course, rank=position, reason=reason, source="model",
                                                run_id=rec.run_id))
            return cards
    popular = (
        catalogue_selectors.course_list().exclude(pk__in=owned).annotate(popularity=Count("enrollments"))
        .order_by("-popularity", "-published_at", "title")[:ROW_SIZE]
    )
    return [RecommendationCard(course=course, rank=position, reason=_("Popular with members like you"),
                               source="popular") for position, course in enumerate(popular, start=1)]


@require_GET
@vary_on_headers("HX-Request")
def row(request: HttpRequest) -> HttpResponse:
    cards = _cards(member=request.user)
    if request.user.is_authenticated:
        for card in cards:
            record_event(member=request.user, kind="recommendation_impression", obj=card.course,
                         properties={"rank": card.rank, "source": card.source, "run_id": card.run_id})
    template = "recommendations/row.html#cards" if request.htmx and not request.htmx.history_restore_request else "recommendations/row.html"
    return render(request, template, {"cards": cards})


@require_GET
def click(request: HttpRequest, course_id: int) -> HttpResponse:
    course = get_object_or_404(catalogue_selectors.course_list(), pk=course_id)
    try:
        rank = int(request.GET.get("rank", "0"))
    except ValueError:
        rank = 0
    if request.user.is_authenticated:
        record_event(member=request.user, kind="recommendation_click", obj=course, properties={"rank": rank})
    return HttpResponseRedirect(course.get_absolute_url())
