"""Alipay (支付宝) open platform, RSA2: computer-website pay (alipay.trade.page.pay, a signed redirect), asynchronous
notifications verified with Alipay's public key, alipay.trade.query for reconciliation, alipay.trade.refund.

Currency: CNY only (total_amount is in yuan with two decimals). No off-session charge unless an agreement-debit
product (周期扣款) is signed with Alipay; without it renewals get a pay link (members.commerce.renewals).
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from alipay import AliPay
from alipay.exceptions import AliPayException
from django.http import HttpRequest, HttpResponse

from members.commerce.providers import Checkout, InvalidNotification, Notice

PAID_STATES = {"TRADE_SUCCESS", "TRADE_FINISHED"}


class AlipayAdapter:
    name = "alipay"
    currencies = frozenset({"CNY"})
    supports_off_session = False

    def __init__(self, *, config: dict[str, Any]) -> None:
        self.app_id = config["app_id"]
        self.notify_url = config.get("notify_url") or None
        self.sdk = AliPay(
            appid=self.app_id, app_notify_url=self.notify_url,
            app_private_key_string=config["app_private_key"], alipay_public_key_string=config["alipay_public_key"],
            sign_type="RSA2", debug=bool(config.get("sandbox")),
        )
        self.gateway = config.get("gateway") or self.sdk._gateway

    def start(self, *, order: Any, return_url: str) -> Checkout:
        if order.currency != "CNY":
            raise ValueError("Alipay accepts CNY only")
        query = self.sdk.api_alipay_trade_page_pay(
            out_trade_no=str(order.pk), total_amount=f"{order.amount_paid:.2f}", subject=order.item_title[:128],
            return_url=return_url, notify_url=self.notify_url,
        )
        return Checkout(kind="redirect", url=f"{self.gateway}?{query}")

    def parse_notification(self, request: HttpRequest) -> Notice:
        data = request.POST.dict()
        signature = data.pop("sign", "")
        if not signature or data.get("sign_type", "RSA2") != "RSA2":
            raise InvalidNotification("unsigned or not RSA2")
        try:
            valid = self.sdk.verify(dict(data), signature)
        except (AliPayException, ValueError, TypeError):
            valid = False
        if not valid:
            raise InvalidNotification("bad signature")
        if data.get("app_id") != self.app_id:
            raise InvalidNotification("notification for another app")
        try:
            return Notice(order_id=int(data["out_trade_no"]), paid=data.get("trade_status") in PAID_STATES,
                          amount=Decimal(data["total_amount"]), currency="CNY", reference=data["trade_no"],
                          event_id=data["trade_no"])
        except (KeyError, ValueError, InvalidOperation):
            raise InvalidNotification("malformed notification") from None

    def ack(self) -> HttpResponse:
        # Alipay retries (up to 8 times over 25 h) until it reads exactly "success".
        return HttpResponse("success", content_type="text/plain")

    def query(self, *, order: Any) -> Notice | None:
        result = self.sdk.api_alipay_trade_query(out_trade_no=str(order.pk))
        if result.get("code") != "10000" or result.get("trade_status") not in PAID_STATES:
            return None
        return Notice(order_id=order.pk, paid=True, amount=Decimal(result["total_amount"]), currency="CNY",
                      reference=result["trade_no"], event_id=result["trade_no"])

    def refund(self, *, order: Any) -> str:
        result = self.sdk.api_alipay_trade_refund(
            refund_amount=f"{order.amount_paid:.2f}", out_trade_no=str(order.pk), out_request_no=f"refund-{order.pk}",
        )
        if result.get("code") != "10000":
            raise RuntimeError(f"Alipay refund failed: {result.get('sub_msg') or result.get('msg')}")
        return result.get("trade_no", "") + ":refund"

    def charge_off_session(self, *, order: Any, method_token: str) -> Notice | None:
        return None
