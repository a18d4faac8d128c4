"""The bounce/complaint webhook (analytics/outreach/suppression.py has the formats and the checks)."""
from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from analytics.outreach.suppression import WebhookRejected, webhook_receive

MAX_BODY_BYTES = 1 << 20


@csrf_exempt  # a provider's server calls it; the signature or Basic credentials are the credential
@require_POST
def email_webhook(request: HttpRequest, provider: str) -> JsonResponse:
    if len(request.body) > MAX_BODY_BYTES:
        return JsonResponse({"error": "body too large"}, status=413)
    try:
        counts = webhook_receive(provider=provider, body=request.body, headers=dict(request.headers))
    except WebhookRejected as rejected:
        return JsonResponse({"error": str(rejected)}, status=rejected.status)
    return JsonResponse(counts)
