"""Alipay (支付宝) open platform, RSA2: computer-website pay (alipay.trade.page.pay, a signed redirect), asynchronous
notifications verified with Alipay's public key, alipay.trade.query for reconciliation, alipay.trade.refund.

Currency: CNY only (total_amount is in yuan with two decimals).

Off-session renewals need Alipay's agreement debit (商家扣款 / 周期扣款) contracted and ALIPAY_AGREEMENT_DEBIT=1.
The member signs the agreement with Alipay once (alipay.user.agreement.page.sign, done in Alipay's pages); the
agreement_no Alipay returns is stored as the member's payment method "alipay:<agreement_no>". A renewal then calls
alipay.trade.pay with product_code GENERAL_WITHHOLDING and agreement_params.agreement_no: Alipay answers
synchronously (code 10000 = paid, with trade_no; 10003 = still processing, confirmed later by the notification or
the reconciliation query; 40004 = declined, e.g. ACQ.AGREEMENT_NOT_EXIST, ACQ.BUYER_BALANCE_NOT_ENOUGH), in a
response Alipay signs and the SDK verifies. Without the agreement product, renewals get a pay link.
"""
from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation
from typing import Any

from alipay import AliPay
from alipay.exceptions import AliPayException
from django.http import HttpRequest, HttpResponse

from members.commerce.providers import Checkout, InvalidNotification, Notice

logger = logging.getLogger(__name__)

PAID_STATES = {"TRADE_SUCCESS", "TRADE_FINISHED"}


class AlipayAdapter:
    name = "alipay"
    currencies = frozenset({"CNY"})
    def __init__(self, *, config: dict[str, Any]) -> None:
        self.app_id = config["app_id"]
        self.supports_off_session = bool(config.get("agreement_debit"))
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
        """Agreement debit (alipay.trade.pay, GENERAL_WITHHOLDING) with the member's signed agreement; None (pay
        link) when agreement debit is not configured or the saved method is not an agreement."""
        agreement_no = method_token.split(":", 1)[1] if method_token.startswith("alipay:") else ""
        if not self.supports_off_session or not agreement_no or order.currency != "CNY":
            return None
        data = self.sdk.build_body("alipay.trade.pay", {
            "out_trade_no": str(order.pk), "total_amount": f"{order.amount_paid:.2f}",
            "subject": order.item_title[:128], "product_code": "GENERAL_WITHHOLDING",
            "agreement_params": {"agreement_no": agreement_no},
        }, notify_url=self.notify_url)
        try:
            result = self.sdk.verified_sync_response(data, "alipay_trade_pay_response")
        except AliPayException as exc:  # an unsigned error_response (bad app id, bad parameters)
            logger.warning("Alipay agreement debit refused for order %s: %s", order.pk, exc)
            return Notice(order_id=order.pk, paid=False, amount=order.amount_paid, currency="CNY", reference="",
                          event_id="")
        code = result.get("code")
        if code == "10000":
            return Notice(order_id=order.pk, paid=True, amount=Decimal(result["total_amount"]), currency="CNY",
                          reference=result["trade_no"], event_id=result["trade_no"])
        if code == "10003":
            # Alipay is still processing: the notification (or the reconciliation query) will settle the order.
            return Notice(order_id=order.pk, paid=False, amount=order.amount_paid, currency="CNY", reference="",
                          event_id="", processing=True)
        logger.info("Alipay agreement debit declined for order %s: %s %s", order.pk, result.get("sub_code"),
                    result.get("sub_msg"))
        return Notice(order_id=order.pk, paid=False, amount=order.amount_paid, currency="CNY", reference="",
                      event_id="")
