"""The payment-provider interface and the local provider.

A provider charges a stored payment-method reference; no card data ever reaches this application. The local
provider succeeds unless told to fail: a method whose token starts with "local:decline" declines, which demos and
tests use to walk the failure and dunning paths.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string
from django.utils.translation import gettext_noop


@dataclass(frozen=True)
class ChargeResult:
    ok: bool
    reference: str = ""
    failure_reason: str = ""
    # The provider cannot charge without the member (Alipay/WeChat Pay without an agreement): the order stays
    # pending and the member gets a pay link; the provider's notification completes it later.
    pending: bool = False


class PaymentProvider(Protocol):
    name: str

    def charge(self, *, token: str, amount: Decimal, currency: str, description: str, idempotency_key: str) -> ChargeResult: ...

    def refund(self, *, reference: str, amount: Decimal, currency: str) -> ChargeResult: ...


class LocalPaymentProvider:
    """Succeeds instantly; declines tokens that start with 'local:decline'. Amounts of zero need no charge."""

    name = "local"
    DECLINE_PREFIX = "local:decline"

    def charge(self, *, token: str, amount: Decimal, currency: str, description: str, idempotency_key: str) -> ChargeResult:
        if amount < 0:
            return ChargeResult(ok=False, failure_reason=gettext_noop("Negative amount"))
        if token.startswith(self.DECLINE_PREFIX):
            return ChargeResult(ok=False, failure_reason=gettext_noop("Card declined by the local test provider"))
        return ChargeResult(ok=True, reference=f"local_{uuid.uuid5(uuid.NAMESPACE_URL, idempotency_key).hex[:20]}")

    def refund(self, *, reference: str, amount: Decimal, currency: str) -> ChargeResult:
        return ChargeResult(ok=True, reference=f"refund_{reference}")


def get_provider() -> PaymentProvider:
    return import_string(settings.PAYMENT_PROVIDER)()
