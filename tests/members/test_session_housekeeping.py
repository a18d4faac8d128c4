"""Expired sessions are deleted daily (Django leaves them to `clearsessions`), and their page-cache markers with them."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from analytics.models import JobRun
from members import pagecache
from members.accounts.tasks import clear_expired_sessions


def _session(expires_in: timedelta) -> str:
    store = SessionStore()
    store["member"] = 1
    store.create()
    Session.objects.filter(session_key=store.session_key).update(expire_date=timezone.now() + expires_in)
    return store.session_key


@pytest.mark.django_db
def test_expired_sessions_and_their_markers_go_live_ones_stay():
    expired, live = _session(-timedelta(minutes=1)), _session(timedelta(days=1))
    assert pagecache.state().get(pagecache.session_marker_key(expired)) is not None  # written when the row was saved

    assert clear_expired_sessions.delay().get() == 1
    assert list(Session.objects.values_list("session_key", flat=True)) == [live]
    assert pagecache.state().get(pagecache.session_marker_key(expired)) is None
    assert pagecache.state().get(pagecache.session_marker_key(live)) is not None
    assert JobRun.objects.get(job="clear_expired_sessions").rows == 1
    assert clear_expired_sessions.delay().get() == 0
