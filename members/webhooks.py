"""Outgoing webhooks for operators who connect other tools (CRM, accounting, chat).

Events: member.created, order.paid, subscription.renewed, subscription.cancelled. Each is a JSON body
{"id", "type", "created", "data"} POSTed to every URL in OUTGOING_WEBHOOK_URLS after the transaction commits, signed
like Stripe's: header `X-Webhook-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. A receiver
recomputes the HMAC with OUTGOING_WEBHOOK_SECRET, compares in constant time and rejects old timestamps.

Delivery is a Celery task: a 5xx, 429 or network error is retried with exponential backoff and jitter (30 s doubling
to 1 h, 8 retries, about 4 h in all); another 4xx is the receiver refusing it and is not retried. At-least-once:
receivers de-duplicate on "id".
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from typing import Any

import requests
from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

logger = logging.getLogger(__name__)
EVENTS = frozenset({"member.created", "order.paid", "subscription.renewed", "subscription.cancelled"})


class WebhookDeliveryError(Exception):
    """The receiver answered 5xx/429: worth retrying."""


def webhook_signature(*, secret: str, body: str, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def webhook_emit(*, event: str, data: dict[str, Any]) -> None:
    """Queue `event` for every configured receiver once the current transaction commits (nothing if none)."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    urls = settings.OUTGOING_WEBHOOK_URLS
    if not urls:
        return
    body = json.dumps({"id": f"evt_{uuid.uuid4().hex}", "type": event, "created": timezone.now().isoformat(),
                       "data": data}, sort_keys=True, default=str)
    for url in urls:
        transaction.on_commit(lambda url=url: deliver_webhook.delay(url=url, body=body))


def _post(*, url: str, body: str) -> int:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "LearningClub-Webhooks/1",
        "X-Webhook-Id": json.loads(body)["id"],
        "X-Webhook-Signature": webhook_signature(secret=settings.OUTGOING_WEBHOOK_SECRET, body=body,
                                                 timestamp=int(time.time())),
    }
    response = requests.post(url, data=body.encode(), headers=headers, timeout=10, allow_redirects=False)
    if response.status_code >= 500 or response.status_code == 429:
        raise WebhookDeliveryError(f"{url} answered {response.status_code}")
    if response.status_code >= 400:
        logger.warning("webhook %s refused by %s with %s; not retried", json.loads(body)["type"], url,
                       response.status_code)
    return response.status_code


@shared_task(acks_late=True,
             autoretry_for=(WebhookDeliveryError, requests.ConnectionError, requests.Timeout),
             retry_backoff=30, retry_backoff_max=3600, retry_jitter=True, max_retries=8)
def deliver_webhook(*, url: str, body: str) -> int:
    return _post(url=url, body=body)
