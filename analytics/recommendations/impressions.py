"""Recording the "recommended for you" row's impressions: once per member, card set and window (issue 19).

An impression means "this member was shown these cards (run, rank, course) at least once in this window", not "the
row was rendered": rendering the same cards again to the same member within RECOMMENDATION_IMPRESSION_WINDOW_SECONDS
of the recorded impression records nothing, so a reload, a second tab or the htmx fragment fetched again does not
inflate the funnel's denominator (docs/METRICS.md, "Online funnel"). A new card set (a new run, a purchase that
removes a card) is recorded at once; the same cards are recorded again once the window has passed. 0 records every
render.

The marker is one key per member in the page cache's shared state (members.pagecache.state(): every worker sees
it), holding a digest of the card set and expiring with the window. The row reads it in the same shared-state read
as the pages versions, so a render inside the window costs no query and no write.
"""
from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace
from typing import Any

from django.conf import settings

from analytics.tracking import record_events
from members import pagecache

KIND = "recommendation_impression"
# A card of the row as stored with the cached row: ((model name, course pk), {"rank", "source", "run_id"}).
Impression = tuple[tuple[str, int], dict[str, Any]]


def window_seconds() -> int:
    return max(0, int(settings.RECOMMENDATION_IMPRESSION_WINDOW_SECONDS))


def marker_key(member_id: object) -> str:
    return f"recs:impressions:member:{member_id}"


def card_set_digest(impressions: list[Impression]) -> str:
    """What identifies the shown cards: each card's course, rank, source and run, in order."""
    cards = [[ref[0], ref[1], props.get("rank"), props.get("source"), props.get("run_id")] for ref, props in impressions]
    return hashlib.sha256(json.dumps(cards, separators=(",", ":")).encode()).hexdigest()[:32]


def _stored_object(model_name: str, pk: int) -> SimpleNamespace:
    """What record_events reads of a card's course (its model name and key), rebuilt from the cached row."""
    return SimpleNamespace(pk=pk, _meta=SimpleNamespace(model_name=model_name))


def record_row_impressions(*, member: Any, impressions: list[Impression], seen: str | None) -> str | None:
    """Record the member's impressions of these cards unless `seen` (the marker's value, read with the pages
    versions) says the same cards were recorded within the window. Returns the marker's value now (None when the
    window is 0 or there is nothing to show): a cached copy of the row stays current only while the marker holds it.
    """
    if not impressions or not getattr(member, "is_authenticated", False):
        return None
    window = window_seconds()
    items = [(_stored_object(*ref), props) for ref, props in impressions]
    if not window:
        record_events(member=member, kind=KIND, items=items)
        return None
    digest = card_set_digest(impressions)
    if seen == digest:
        return digest
    key = marker_key(member.pk)
    # `add` claims the window when no marker exists, so two workers rendering the first row at once record it once;
    # a marker of other cards (a new run, a card gone) is replaced and the new cards recorded.
    if seen is None and not pagecache.state().add(key, digest, window):
        if pagecache.state().get(key) == digest:
            return digest
        pagecache.state().set(key, digest, window)
    elif seen is not None:
        pagecache.state().set(key, digest, window)
    record_events(member=member, kind=KIND, items=items)
    return digest
