"""The learner-facing "recommended for you" row, loaded into the home page by htmx (members never import analytics).

Cards come from the member's current RecommendationRun; with none, the most popular published courses the member
does not own stand in. Showing a card records an impression — once per member, card set and
RECOMMENDATION_IMPRESSION_WINDOW_SECONDS (analytics/recommendations/impressions.py); a card's link goes through
`click`, which records the click and redirects to the course, so click-through is measured per rank.
"""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from analytics.recommendations import impressions as row_impressions
from analytics.recommendations.selectors import recommendation_cards
from analytics.tracking import record_event
from members import pagecache
from members.catalogue import selectors as catalogue_selectors

ROW_SIZE = 4


@require_GET
@vary_on_headers("HX-Request")
def row(request: HttpRequest) -> HttpResponse:
    # The row is cached rendered per member, language and pages version (the nightly run bumps it). The impressions
    # marker is read with the versions (one shared-state read): inside the window, the same cards record nothing.
    member = request.user
    marker = row_impressions.marker_key(member.pk) if member.is_authenticated and row_impressions.window_seconds() else ""
    key = pagecache.page_key(request, also=(marker,) if marker else ())
    stored = pagecache.store().get(key)
    if stored is not None:
        impressions = stored["impressions"]
        response = pagecache.thaw(stored, request)
    else:
        cards = recommendation_cards(member=member, limit=ROW_SIZE)
        impressions = [((card.course._meta.model_name, card.course.pk), {"rank": card.rank, "source": card.source, "run_id": card.run_id})
                       for card in cards]
        template = "recommendations/row.html#cards" if request.htmx and not request.htmx.history_restore_request else "recommendations/row.html"
        personal = any(card.source == "model" for card in cards)
        response = render(request, template, {"cards": cards, "personal": personal})
        frozen = pagecache.freeze(response, request)
        if frozen is not None:
            stored = {**frozen, "impressions": impressions}
            pagecache.store().set(key, stored)
    seen = getattr(request, "page_state_also", {}).get(marker) if marker else None
    recorded = row_impressions.record_row_impressions(member=member, impressions=impressions, seen=seen)
    if stored is not None and (recorded is not None or not impressions):
        # The front of the page cache (members.pagecache.front) may serve this row again to this session, without
        # the stack, while the versions and the marker are unchanged: only renders that record nothing. With no
        # cards there is nothing to record; with cards, only while a marker holds them (not with a window of 0).
        if recorded is not None:
            request.page_cache_versions = {**request.page_cache_versions, marker: recorded}  # type: ignore[attr-defined]
        response.page_cache_entry = stored  # type: ignore[attr-defined]
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
