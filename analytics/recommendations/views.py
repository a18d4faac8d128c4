"""The learner-facing "recommended for you" row, loaded into the home page by htmx (members never import analytics).

Cards come from the member's current RecommendationRun; with none, the most popular published courses the member
does not own stand in. Rendering a card records an impression; a card's link goes through `click`, which records
the click and redirects to the course, so click-through is measured per rank.
"""
from __future__ import annotations

from types import SimpleNamespace

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from analytics.recommendations.selectors import recommendation_cards
from analytics.tracking import record_event, record_events
from members import pagecache
from members.catalogue import selectors as catalogue_selectors

ROW_SIZE = 4


def _stored_object(model_name: str, pk: int) -> SimpleNamespace:
    """What record_events reads of a card's course (its model name and key), rebuilt from the cached row."""
    return SimpleNamespace(pk=pk, _meta=SimpleNamespace(model_name=model_name))


@require_GET
@vary_on_headers("HX-Request")
def row(request: HttpRequest) -> HttpResponse:
    # The row is cached rendered per member, language and pages version (the nightly run bumps it); each request,
    # served from the cache or not, still records its impressions.
    key = pagecache.page_key(request)
    stored = pagecache.store().get(key)
    if stored is not None:
        impressions = stored["impressions"]
        response = pagecache.thaw(stored, request)
    else:
        cards = recommendation_cards(member=request.user, limit=ROW_SIZE)
        impressions = [((card.course._meta.model_name, card.course.pk), {"rank": card.rank, "source": card.source, "run_id": card.run_id})
                       for card in cards]
        template = "recommendations/row.html#cards" if request.htmx and not request.htmx.history_restore_request else "recommendations/row.html"
        personal = any(card.source == "model" for card in cards)
        response = render(request, template, {"cards": cards, "personal": personal})
        frozen = pagecache.freeze(response, request)
        if frozen is not None:
            pagecache.store().set(key, {**frozen, "impressions": impressions})
    if request.user.is_authenticated:
        record_events(member=request.user, kind="recommendation_impression",
                      items=[(_stored_object(*ref), props) for ref, props in impressions])
    return response


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
