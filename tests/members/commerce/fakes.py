"""Local fakes of Alipay, WeChat Pay v3 and Stripe that sign exactly as the providers document, with keys generated
for the test run. Never the network."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def rsa_pair() -> tuple[Any, str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption()).decode()
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return key, private_pem, public_pem


def rsa_sha256_b64(key: Any, message: str) -> str:
    return base64.b64encode(key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


# ---- Alipay: RSA2 = SHA256withRSA over the sorted k=v&k=v string of every field except sign (and sign_type).
def alipay_sign_notification(key: Any, fields: dict[str, str]) -> dict[str, str]:
    unsigned = {k: v for k, v in fields.items() if k not in ("sign", "sign_type")}
    message = "&".join(f"{k}={unsigned[k]}" for k in sorted(unsigned))
    return {**fields, "sign_type": "RSA2", "sign": rsa_sha256_b64(key, message)}


class FakeAlipayGateway:
    """Stands in for urlopen(gateway): answers alipay.trade.query / refund with a signed JSON response."""

    def __init__(self, key: Any, trades: dict[str, dict[str, str]], *, app_public_key: Any = None,
                 agreements: dict[str, str] | None = None) -> None:
        # agreements: agreement_no -> "ok" | "processing" | "no_balance" (what a debit against it returns)
        self.key, self.trades, self.calls = key, trades, []
        self.app_public_key, self.agreements = app_public_key, agreements or {}

    def _request_signed_by_the_app(self, params: dict[str, str]) -> bool:
        """Alipay checks the app's RSA2 signature over every request parameter but sign, sorted, k=v&k=v."""
        if self.app_public_key is None:
            return True
        unsigned = {k: v for k, v in params.items() if k != "sign"}
        message = "&".join(f"{k}={unsigned[k]}" for k in sorted(unsigned)).encode()
        try:
            self.app_public_key.verify(base64.b64decode(params.get("sign", "")), message, padding.PKCS1v15(),
                                       hashes.SHA256())
        except Exception:  # noqa: BLE001 - any verification failure is Alipay's isv.invalid-signature
            return False
        return True

    def _trade_pay(self, biz: dict[str, Any]) -> dict[str, Any]:
        """alipay.trade.pay with GENERAL_WITHHOLDING (agreement debit), as Alipay documents its answers."""
        agreement = (biz.get("agreement_params") or {}).get("agreement_no", "")
        outcome = self.agreements.get(agreement)
        if biz.get("product_code") != "GENERAL_WITHHOLDING" or outcome is None:
            return {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.AGREEMENT_NOT_EXIST",
                    "sub_msg": "用户协议不存在"}
        if outcome == "no_balance":
            return {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.BUYER_BALANCE_NOT_ENOUGH",
                    "sub_msg": "买家余额不足"}
        trade_no = f"20261205220014{int(biz['out_trade_no']):014d}"
        if outcome == "processing":
            return {"code": "10003", "msg": "Waiting Payment", "out_trade_no": biz["out_trade_no"],
                    "trade_no": trade_no}
        self.trades[biz["out_trade_no"]] = {"trade_no": trade_no, "trade_status": "TRADE_SUCCESS",
                                            "total_amount": biz["total_amount"]}
        return {"code": "10000", "msg": "Success", "out_trade_no": biz["out_trade_no"], "trade_no": trade_no,
                "total_amount": biz["total_amount"], "buyer_user_id": "2088101117955611",
                "gmt_payment": "2026-12-05 10:00:00"}

    def __call__(self, url: str, timeout: int = 15) -> Any:
        from urllib.parse import parse_qs, urlparse

        params = {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
        method, biz = params["method"], json.loads(params["biz_content"])
        self.calls.append(method)
        trade = self.trades.get(biz["out_trade_no"], {})
        if not self._request_signed_by_the_app(params):
            body = {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-signature",
                    "sub_msg": "验签出错"}
        elif method == "alipay.trade.pay":
            body = self._trade_pay(biz)
        elif method == "alipay.trade.query":
            body = {"code": "10000", "msg": "Success", "out_trade_no": biz["out_trade_no"], **trade}
        else:
            body = {"code": "10000", "msg": "Success", "out_trade_no": biz["out_trade_no"],
                    "trade_no": trade.get("trade_no", ""), "refund_fee": biz.get("refund_amount"), "fund_change": "Y"}
        name = method.replace(".", "_") + "_response"
        inner = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        raw = f'{{"{name}":{inner},"sign":"{rsa_sha256_b64(self.key, inner)}"}}'

        class _Resp:
            def read(self_inner) -> bytes:
                return raw.encode()

        return _Resp()


# ---- WeChat Pay v3 callback: resource encrypted with AEAD_AES_256_GCM (APIv3 key), headers signed with the
# platform private key over "timestamp\nnonce\nbody\n".
def wechat_callback(platform_key: Any, apiv3_key: str, transaction: dict[str, Any],
                    timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    nonce = base64.b16encode(os.urandom(6)).decode()[:12]
    associated = "transaction"
    ciphertext = AESGCM(apiv3_key.encode()).encrypt(nonce.encode(), json.dumps(transaction).encode(),
                                                    associated.encode())
    body = json.dumps({
        "id": "EV-" + transaction["transaction_id"], "create_time": "2026-12-05T10:00:00+08:00",
        "resource_type": "encrypt-resource", "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功",
        "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
                     "ciphertext": base64.b64encode(ciphertext).decode(), "associated_data": associated,
                     "nonce": nonce},
    }).encode()
    ts = str(timestamp or int(time.time()))
    header_nonce = base64.b16encode(os.urandom(16)).decode()
    signature = rsa_sha256_b64(platform_key, f"{ts}\n{header_nonce}\n{body.decode()}\n")
    return body, {"HTTP_WECHATPAY_TIMESTAMP": ts, "HTTP_WECHATPAY_NONCE": header_nonce,
                  "HTTP_WECHATPAY_SIGNATURE": signature, "HTTP_WECHATPAY_SERIAL": "PUB_KEY_ID_TEST"}


class FakeWeChatClient:
    """wechatpayv3.WeChatPay's pay/query/refund, answering as the v3 API documents (status code, JSON text)."""

    def __init__(self, transactions: dict[str, dict[str, Any]]) -> None:
        self.transactions, self.refunds = transactions, []

    def pay(self, *, description: str, out_trade_no: str, amount: dict[str, Any]) -> tuple[int, str]:
        return 200, json.dumps({"code_url": f"weixin://wxpay/bizpayurl?pr=fake{out_trade_no}"})

    def query(self, *, out_trade_no: str) -> tuple[int, str]:
        tx = self.transactions.get(out_trade_no)
        return (200, json.dumps(tx)) if tx else (404, '{"code":"ORDER_NOT_EXIST"}')

    def refund(self, *, out_refund_no: str, out_trade_no: str, amount: dict[str, Any]) -> tuple[int, str]:
        self.refunds.append((out_refund_no, amount))
        return 200, json.dumps({"refund_id": "50000000382019052709732678859", "status": "PROCESSING"})


# ---- Stripe: Stripe-Signature: t=<ts>,v1=HMAC-SHA256(secret, "<ts>.<payload>").
def stripe_signature(secret: str, payload: bytes, timestamp: int | None = None) -> str:
    ts = timestamp or int(time.time())
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def stripe_event(event_type: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"id": "evt_" + obj["id"], "object": "event", "type": event_type, "api_version": "2024-06-20",
                       "data": {"object": obj}}).encode()


class FakeStripeHTTP:
    """A stripe.HTTPClient stand-in: answers Checkout Session create/retrieve, refunds and off-session PaymentIntents
    with the JSON shapes Stripe documents. Only the sessions it created exist."""

    name = "fake"

    def __init__(self, *, session_paid: bool = False, decline: bool = False) -> None:
        import stripe

        self._base = stripe.HTTPClient
        self.session_paid, self.decline, self.sessions, self.calls = session_paid, decline, {}, []

    def as_client(self) -> Any:
        import stripe

        fake = self

        class Client(stripe.HTTPClient):
            name = "fake"

            def request(self, method, url, headers, post_data=None, *, _usage=None):  # noqa: ANN001
                return fake.handle(method, url, post_data)

            def request_with_retries(self, method, url, headers, post_data=None, max_network_retries=None,
                                     *, _usage=None):  # noqa: ANN001
                return fake.handle(method, url, post_data)

        return Client()

    def handle(self, method: str, url: str, post_data: Any) -> tuple[str, int, dict[str, str]]:
        from urllib.parse import parse_qs, urlparse

        path = urlparse(url).path
        form = {k: v[0] for k, v in parse_qs(post_data or "").items()}
        self.calls.append((method, path))
        if path == "/v1/checkout/sessions" and method == "post":
            sid = f"cs_test_{len(self.sessions) + 1}"
            amount = int(form["line_items[0][price_data][unit_amount]"])
            self.sessions[sid] = {"id": sid, "object": "checkout.session", "url": f"https://checkout.stripe.com/c/pay/{sid}",
                                  "client_reference_id": form["client_reference_id"], "amount_total": amount,
                                  "currency": form["line_items[0][price_data][currency]"],
                                  "payment_status": "paid" if self.session_paid else "unpaid",
                                  "payment_intent": f"pi_{sid}" if self.session_paid else None}
            return json.dumps(self.sessions[sid]), 200, {}
        if path.startswith("/v1/checkout/sessions/") and method == "get":
            session = self.sessions.get(path.rsplit("/", 1)[1])
            if session is None:
                return json.dumps({"error": {"type": "invalid_request_error", "message": "No such session"}}), 404, {}
            return json.dumps(session), 200, {}
        if path == "/v1/refunds":
            return json.dumps({"id": "re_1", "object": "refund", "payment_intent": form["payment_intent"],
                               "amount": int(form["amount"]), "status": "succeeded"}), 200, {}
        if path == "/v1/payment_intents":
            if self.decline:
                return json.dumps({"error": {"type": "card_error", "code": "card_declined",
                                             "message": "Your card was declined."}}), 402, {}
            return json.dumps({"id": "pi_offsession_1", "object": "payment_intent", "status": "succeeded",
                               "amount": int(form["amount"]), "amount_received": int(form["amount"]),
                               "currency": form["currency"], "payment_method": form["payment_method"],
                               "metadata": {"order_id": form["metadata[order_id]"]}}), 200, {}
        return json.dumps({"error": {"type": "invalid_request_error", "message": path}}), 404, {}
