"""Outgoing webhooks: signed with HMAC, sent after commit, retried with backoff on 5xx/429/network errors."""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest
import requests

from members import webhooks
from members.accounts import services

pytestmark = pytest.mark.django_db
SECRET = "whsec_outgoing_test_secret"


class _Resp:
    def __init__(self, status: int) -> None:
        self.status_code = status


@pytest.fixture
def receiver(settings, monkeypatch):
    settings.OUTGOING_WEBHOOK_URLS = ["https://hooks.example/in"]
    settings.OUTGOING_WEBHOOK_SECRET = SECRET
    sent = []

    def post(url, data, headers, timeout, allow_redirects):  # noqa: ANN001
        sent.append((url, data.decode(), headers))
        return _Resp(200)

    monkeypatch.setattr(webhooks.requests, "post", post)
    return sent


def test_member_created_is_sent_after_commit_and_signed(receiver, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        user = services.member_create(email="new@example.com", password="pw-123456789")
    assert receiver == []  # nothing leaves before the transaction commits
    for callback in callbacks:
        callback()
    (url, body, headers), = receiver
    payload = json.loads(body)
    assert payload["type"] == "member.created" and payload["data"]["member_id"] == user.pk
    stamp, mac = dict(p.split("=", 1) for p in headers["X-Webhook-Signature"].split(",")).values()
    expected = hmac.new(SECRET.encode(), f"{stamp}.{body}".encode(), hashlib.sha256).hexdigest()
    assert hmac.compare_digest(mac, expected) and headers["X-Webhook-Id"] == payload["id"]


def test_no_receivers_means_nothing_queued(settings, django_capture_on_commit_callbacks):
    settings.OUTGOING_WEBHOOK_URLS = []
    with django_capture_on_commit_callbacks() as callbacks:
        webhooks.webhook_emit(event="order.paid", data={"order_id": 1})
    assert callbacks == []


@pytest.mark.parametrize(("status", "retried"), [(500, True), (503, True), (429, True), (400, False), (200, False)])
def test_server_errors_are_retried_client_errors_are_not(settings, monkeypatch, status, retried):
    settings.OUTGOING_WEBHOOK_SECRET = SECRET
    monkeypatch.setattr(webhooks.requests, "post", lambda *a, **k: _Resp(status))
    body = json.dumps({"id": "evt_1", "type": "order.paid", "data": {}})
    if retried:
        with pytest.raises(webhooks.WebhookDeliveryError):
            webhooks._post(url="https://hooks.example/in", body=body)
    else:
        assert webhooks._post(url="https://hooks.example/in", body=body) == status


def test_delivery_task_retries_with_backoff_on_transient_errors():
    task = webhooks.deliver_webhook
    assert set(task.autoretry_for) >= {webhooks.WebhookDeliveryError, requests.ConnectionError, requests.Timeout}
    assert task.retry_backoff == 30 and task.retry_jitter and task.max_retries == 8 and task.acks_late


def test_unknown_event_is_refused():
    with pytest.raises(ValueError):
        webhooks.webhook_emit(event="order.deleted", data={})
