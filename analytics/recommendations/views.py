"""The learner-facing "recommended for you" row, loaded into the home page by htmx (members never import analytics).

Cards come from the member's current RecommendationRun; with none, the most popular published courses the member
does not own stand in. Rendering a card records an impression; a card's link goes through `click`, which records
the click and redirects to the course, so click-through is measured per rank.
"""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from analytics.recommendations.selectors import recommendation_cards
from analytics.tracking import record_event, record_events
from members.catalogue import selectors as catalogue_selectors

ROW_SIZE = 4


@require_GET
@vary_on_headers("HX-Request")
def row(request: HttpRequest) -> HttpResponse:
    cards = recommendation_cards(member=request.user, limit=ROW_SIZE)
    if request.user.is_authenticated:
        record_events(member=request.user, kind="recommendation_impression", items=[
            (card.course, {"rank": card.rank, "source": card.source, "run_id": card.run_id}) for card in cards
        ])
    template = "recommendations/row.html#cards" if request.htmx and not request.htmx.history_restore_request else "recommendations/row.html"
    personal = any(card.source == "model" for card in cards)
    return render(request, template, {"cards": cards, "personal": personal})


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
