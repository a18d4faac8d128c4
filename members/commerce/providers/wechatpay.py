"""WeChat Pay API v3 (微信支付): Native pay (a code_url the page shows as a QR code), callbacks verified with the
WeChat Pay platform public key (RSA-SHA256 over "timestamp\\nnonce\\nbody\\n") and decrypted with the APIv3 key
(AEAD_AES_256_GCM), order query by out_trade_no, refunds. API calls go through wechatpayv3.

Currency: CNY only (amounts in fen). No off-session charge unless 委托代扣 (entrusted debit) is contracted; without
it renewals get a pay link.
"""
from __future__ import annotations

import base64
import json
import time
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.http import HttpRequest, HttpResponse, JsonResponse

from members.commerce.providers import Checkout, InvalidNotification, Notice, from_minor_units, to_minor_units

MAX_SKEW_SECONDS = 300


class WeChatPayAdapter:
    name = "wechatpay"
    currencies = frozenset({"CNY"})
    supports_off_session = False

    def __init__(self, *, config: dict[str, Any]) -> None:
        self.config = config
        self.mchid = config["mchid"]
        self.appid = config["appid"]
        self.apiv3_key = config["apiv3_key"].encode()
        self.platform_public_key = serialization.load_pem_public_key(config["platform_public_key"].encode())
        self._client = config.get("client")  # tests pass a local fake with wechatpayv3's method names

    @property
    def client(self) -> Any:
        if self._client is None:
            from wechatpayv3 import WeChatPay, WeChatPayType

            self._client = WeChatPay(
                wechatpay_type=WeChatPayType.NATIVE, mchid=self.mchid, private_key=self.config["private_key"],
                cert_serial_no=self.config["cert_serial_no"], apiv3_key=self.config["apiv3_key"], appid=self.appid,
                notify_url=self.config.get("notify_url"), public_key=self.config["platform_public_key"],
                public_key_id=self.config.get("platform_public_key_id"),
            )
        return self._client

    def start(self, *, order: Any, return_url: str) -> Checkout:
        if order.currency != "CNY":
            raise ValueError("WeChat Pay accepts CNY only")
        code, text = self.client.pay(description=order.item_title[:127], out_trade_no=str(order.pk),
                                     amount={"total": to_minor_units(order.amount_paid), "currency": "CNY"})
        if code != 200:
            raise RuntimeError(f"WeChat Pay refused the order: {text}")
        return Checkout(kind="qr", url=json.loads(text)["code_url"])

    def parse_notification(self, request: HttpRequest) -> Notice:
        ts = request.headers.get("Wechatpay-Timestamp", "")
        nonce = request.headers.get("Wechatpay-Nonce", "")
        signature = request.headers.get("Wechatpay-Signature", "")
        if not (ts and nonce and signature):
            raise InvalidNotification("unsigned")
        try:
            if abs(time.time() - int(ts)) > MAX_SKEW_SECONDS:
                raise InvalidNotification("stale timestamp")
            message = f"{ts}\n{nonce}\n{request.body.decode()}\n".encode()
            self.platform_public_key.verify(base64.b64decode(signature), message, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError, UnicodeDecodeError):
            raise InvalidNotification("bad signature") from None
        try:
            body = json.loads(request.body)
            resource = body["resource"]
            if resource.get("algorithm") != "AEAD_AES_256_GCM":
                raise InvalidNotification("unknown algorithm")
            plain = AESGCM(self.apiv3_key).decrypt(
                resource["nonce"].encode(), base64.b64decode(resource["ciphertext"]),
                (resource.get("associated_data") or "").encode(),
            )
            tx = json.loads(plain)
        except (KeyError, ValueError, InvalidTag, TypeError):
            raise InvalidNotification("cannot decrypt resource") from None
        if tx.get("mchid") != self.mchid:
            raise InvalidNotification("notification for another merchant")
        return self._notice(tx)

    def _notice(self, tx: dict[str, Any]) -> Notice:
        return Notice(order_id=int(tx["out_trade_no"]), paid=tx.get("trade_state") == "SUCCESS",
                      amount=from_minor_units(tx["amount"]["total"]), currency=tx["amount"].get("currency", "CNY"),
                      reference=tx["transaction_id"], event_id=tx["transaction_id"])

    def ack(self) -> HttpResponse:
        return JsonResponse({"code": "SUCCESS", "message": "OK"})

    def query(self, *, order: Any) -> Notice | None:
        code, text = self.client.query(out_trade_no=str(order.pk))
        if code != 200:
            return None
        tx = json.loads(text)
        return self._notice(tx) if tx.get("trade_state") == "SUCCESS" else None

    def refund(self, *, order: Any) -> str:
        total = to_minor_units(order.amount_paid)
        code, text = self.client.refund(out_refund_no=f"refund-{order.pk}", out_trade_no=str(order.pk),
                                        amount={"refund": total, "total": total, "currency": "CNY"})
        if code not in (200, 201):
            raise RuntimeError(f"WeChat Pay refund failed: {text}")
        return json.loads(text).get("refund_id", "")

    def charge_off_session(self, *, order: Any, method_token: str) -> Notice | None:
        return None


