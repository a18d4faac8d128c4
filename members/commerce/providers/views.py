"""Per-provider webhook endpoints: /payments/webhooks/<provider>/. Signature first; nothing is read from an
unverified body. Forged, unsigned or stale -> 400 and no change; unknown provider -> 404."""
from __future__ import annotations

import logging

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from members import exceptions
from members.commerce.provider_services import order_payment_confirm
from members.commerce.providers import InvalidNotification, ProviderNotConfigured, get_adapter
from members.models import Order

logger = logging.getLogger(__name__)


@csrf_exempt  # providers cannot send a CSRF token; the signature authenticates the request instead
@require_POST
def webhook(request: HttpRequest, provider: str) -> HttpResponse:
    try:
        adapter = get_adapter(provider)
    except ProviderNotConfigured:
        raise Http404 from None
    try:
        notice = adapter.parse_notification(request)
    except InvalidNotification as exc:
        logger.warning("rejected %s notification: %s", provider, exc)
        return JsonResponse({"error": "invalid notification"}, status=400)
    try:
        order_payment_confirm(provider=provider, notice=notice)
    except Order.DoesNotExist:
        return JsonResponse({"error": "unknown order"}, status=404)
    except exceptions.PaymentFailed:
        return JsonResponse({"error": "amount mismatch"}, status=409)
    return adapter.ack()
