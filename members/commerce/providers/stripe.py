"""Stripe: Checkout Session (redirect), Stripe-Signature webhooks, PaymentIntent status, refunds, and off-session
renewals with the payment method the first Checkout saved (setup_future_usage=off_session).

Currencies: any Stripe supports; this site sells in CNY, USD and EUR (all two-decimal).
"""
from __future__ import annotations

import json
from typing import Any

import stripe
from django.http import HttpRequest, HttpResponse

from members.commerce.providers import Checkout, InvalidNotification, Notice, from_minor_units, to_minor_units


def saved_method_token(intent: Any) -> str:
    """"stripe:<customer>:<payment_method>" when the intent saved a reusable card for a customer, else ""."""
    customer, method = intent.get("customer") or "", intent.get("payment_method") or ""
    if not (customer and method and intent.get("setup_future_usage") == "off_session"):
        return ""
    return f"stripe:{customer}:{method}"


class StripeAdapter:
    name = "stripe"
    currencies = frozenset({"CNY", "USD", "EUR"})
    supports_off_session = True

    def __init__(self, *, config: dict[str, Any]) -> None:
        self.webhook_secret = config["webhook_secret"]
        # http_client is for tests (a local fake speaking Stripe's documented JSON); production uses Stripe's own.
        self.client = stripe.StripeClient(config["secret_key"], http_client=config.get("http_client"),
                                          max_network_retries=2)

    def start(self, *, order: Any, return_url: str) -> Checkout:
        session = self.client.v1.checkout.sessions.create(params={
            "mode": "payment",
            "client_reference_id": str(order.pk),
            "metadata": {"order_id": str(order.pk)},
            "line_items": [{"quantity": 1, "price_data": {
                "currency": order.currency.lower(), "unit_amount": to_minor_units(order.amount_paid),
                "product_data": {"name": order.item_title}}}],
            "payment_intent_data": {"metadata": {"order_id": str(order.pk)}, "setup_future_usage": "off_session"},
            "customer_email": order.member.email,
            "customer_creation": "always",  # a Customer to attach the saved card to, for off-session renewals
            "success_url": return_url, "cancel_url": return_url,
        }, options={"idempotency_key": f"checkout-order-{order.pk}"})
        return Checkout(kind="redirect", url=session.url, reference=session.id)

    def parse_notification(self, request: HttpRequest) -> Notice:
        signature = request.headers.get("Stripe-Signature", "")
        if not signature:
            raise InvalidNotification("missing Stripe-Signature")
        try:
            stripe.Webhook.construct_event(request.body, signature, self.webhook_secret, tolerance=300)
            event = json.loads(request.body)  # verified: now read it as plain JSON
            obj = event["data"]["object"]
        except (stripe.SignatureVerificationError, ValueError, KeyError, TypeError) as exc:
            raise InvalidNotification(str(exc)) from None
        if event["type"] == "checkout.session.completed":
            order_id = obj.get("client_reference_id") or (obj.get("metadata") or {}).get("order_id")
            return Notice(order_id=int(order_id), paid=obj.get("payment_status") == "paid",
                          amount=from_minor_units(obj["amount_total"]), currency=obj["currency"].upper(),
                          reference=obj.get("payment_intent") or obj["id"],
                          event_id=obj.get("payment_intent") or obj["id"])
        if event["type"] == "payment_intent.succeeded":
            return self._notice_from_intent(obj)
        raise InvalidNotification(f"unhandled event type {event['type']}")

    def _notice_from_intent(self, intent: Any) -> Notice:
        order_id = (intent.get("metadata") or {}).get("order_id")
        if not order_id:
            raise InvalidNotification("payment intent without order_id")
        return Notice(order_id=int(order_id), paid=intent["status"] == "succeeded",
                      amount=from_minor_units(intent["amount_received"] or intent["amount"]),
                      currency=intent["currency"].upper(), reference=intent["id"], event_id=intent["id"],
                      payment_method=saved_method_token(intent))

    def ack(self) -> HttpResponse:
        return HttpResponse(status=200)

    def query(self, *, order: Any) -> Notice | None:
        if not order.provider_reference:
            return None
        session = self.client.v1.checkout.sessions.retrieve(order.provider_reference).to_dict()
        if session.get("payment_status") != "paid":
            return None
        intent = session.get("payment_intent") or session["id"]
        return Notice(order_id=order.pk, paid=True, amount=from_minor_units(session["amount_total"]),
                      currency=session["currency"].upper(), reference=intent, event_id=intent)

    def refund(self, *, order: Any) -> str:
        refund = self.client.v1.refunds.create(
            params={"payment_intent": order.provider_reference, "amount": to_minor_units(order.amount_paid)},
            options={"idempotency_key": f"refund-order-{order.pk}"},
        )
        return refund.id

    def charge_off_session(self, *, order: Any, method_token: str) -> Notice | None:
        """method_token: "stripe:<customer>:<payment_method>" saved from the first Checkout."""
        try:
            _prefix, customer, method = method_token.split(":", 2)
        except ValueError:
            return None
        try:
            intent = self.client.v1.payment_intents.create(params={
                "amount": to_minor_units(order.amount_paid), "currency": order.currency.lower(),
                "customer": customer, "payment_method": method, "off_session": True, "confirm": True,
                "metadata": {"order_id": str(order.pk)},
            }, options={"idempotency_key": f"renewal-order-{order.pk}"})
        except stripe.CardError:
            return Notice(order_id=order.pk, paid=False, amount=order.amount_paid, currency=order.currency,
                          reference="", event_id="")
        return self._notice_from_intent(intent.to_dict())
