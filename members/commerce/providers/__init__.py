"""Real payment providers behind one adapter interface (docs/PAYMENTS.md).

The local provider (members.commerce.payments, the embedded default) charges stored tokens synchronously. The providers here
take the member to the provider (a redirect, a QR code, a Checkout Session) and confirm the payment asynchronously:

    start(order, return_url)      -> Checkout: where to send the member
    parse_notification(request)   -> Notice: verified by the provider's signature, or InvalidNotification (4xx)
    query(order)                  -> Notice | None: the provider's view of the order (reconciliation)
    refund(order)                 -> reference of the refund
    charge_off_session(order, method_token) -> Notice | None: None when the provider cannot (pay link instead)

Every notice is applied by one service, members.commerce.services.order_payment_confirm, which locks the order and
records the notice under a unique (provider, event_id): a replay or a racing return page changes nothing.
Keys come from the environment (settings.PAYMENT_PROVIDERS_CONFIG); a provider with no keys is not offered.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string

ADAPTERS = {
    "alipay": "members.commerce.providers.alipay.AlipayAdapter",
    "wechatpay": "members.commerce.providers.wechatpay.WeChatPayAdapter",
    "stripe": "members.commerce.providers.stripe.StripeAdapter",
}


class InvalidNotification(Exception):
    """Unsigned, forged, stale or malformed: answered 4xx and never applied."""


class ProviderNotConfigured(Exception):
    pass


@dataclass(frozen=True)
class Checkout:
    kind: str  # "redirect" (open url) or "qr" (render url as a QR code, WeChat Native)
    url: str
    reference: str = ""  # the provider's id for this attempt (Stripe session id), kept on the order


@dataclass(frozen=True)
class Notice:
    order_id: int
    paid: bool
    amount: Decimal
    currency: str
    reference: str  # the provider's transaction id
    event_id: str  # what makes a delivery unique (the provider's transaction id: notification and query agree)
    payment_method: str = ""  # a reusable method the provider saved (Stripe), for off-session renewals
    processing: bool = False  # an off-session debit the provider accepted but has not finished (Alipay 10003)


class ProviderAdapter(Protocol):
    name: str
    currencies: frozenset[str]
    supports_off_session: bool

    def start(self, *, order: Any, return_url: str) -> Checkout: ...
    def parse_notification(self, request: HttpRequest) -> Notice: ...
    def ack(self) -> HttpResponse: ...
    def query(self, *, order: Any) -> Notice | None: ...
    def refund(self, *, order: Any) -> str: ...
    def charge_off_session(self, *, order: Any, method_token: str) -> Notice | None: ...


def to_minor_units(amount: Decimal) -> int:
    """CNY/USD/EUR have two decimals (fen, cents): 49.00 -> 4900."""
    return int((amount * 100).quantize(Decimal("1")))


def from_minor_units(value: int) -> Decimal:
    return (Decimal(value) / 100).quantize(Decimal("0.01"))


def configured() -> list[str]:
    return [name for name in ADAPTERS if settings.PAYMENT_PROVIDERS_CONFIG.get(name)]


def get_adapter(name: str, **overrides: Any) -> ProviderAdapter:
    config = settings.PAYMENT_PROVIDERS_CONFIG.get(name)
    if name not in ADAPTERS or not config:
        raise ProviderNotConfigured(name)
    return import_string(ADAPTERS[name])(config={**config, **overrides})


def currencies(name: str) -> frozenset[str]:
    """The currencies a provider accepts, without building its client (the checkout page lists providers)."""
    return import_string(ADAPTERS[name]).currencies
