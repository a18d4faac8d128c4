"""Helpers for the money tests: a provider that counts charges, and a way to fire N requests at once."""
from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.db import connections

from members.commerce.payments import ChargeResult, LocalPaymentProvider

COUNTING_PROVIDER = "tests.members.money_support.CountingProvider"


class CountingProvider(LocalPaymentProvider):
    """The local provider, slowed down like a real network call, recording every charge it is asked to make.

    The pause widens the window between "reserve" and "settle" the way a real provider's 200-800 ms does, so races
    that depend on it show up in a test instead of only in production."""

    name = "local"
    charges: list[dict[str, Any]] = []
    lock = threading.Lock()
    delay = 0.05

    def charge(self, *, token: str, amount: Decimal, currency: str, description: str, idempotency_key: str) -> ChargeResult:
        time.sleep(self.delay)
        result = super().charge(token=token, amount=amount, currency=currency, description=description,
                                idempotency_key=idempotency_key)
        with self.lock:
            self.charges.append({"amount": amount, "key": idempotency_key, "ok": result.ok})
        return result

    @classmethod
    def reset(cls) -> None:
        with cls.lock:
            cls.charges.clear()

    @classmethod
    def successful(cls) -> list[dict[str, Any]]:
        with cls.lock:
            return [c for c in cls.charges if c["ok"]]


def fire(n: int, request: Callable[[int], Any]) -> list[Any]:
    """Run request(i) for i in range(n) in n threads released together; each thread has its own DB connection."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = request(i)
        except Exception as exc:  # noqa: BLE001 - the test asserts on what each request got, errors included
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


HIDDEN_INPUT = re.compile(r'<input[^>]*type="hidden"[^>]*>')
NAME = re.compile(r'name="([^"]+)"')
VALUE = re.compile(r'value="([^"]*)"')


def hidden_inputs(html: str, form_action: str | None = None) -> dict[str, str]:
    """The hidden inputs of a page (of the form posting to form_action when given), as a browser would send them."""
    if form_action is not None:
        match = re.search(rf'<form[^>]*action="{re.escape(form_action)}"[^>]*>(.*?)</form>', html, re.S)
        html = match.group(1) if match else ""
    fields = {}
    for tag in HIDDEN_INPUT.findall(html):
        name, value = NAME.search(tag), VALUE.search(tag)
        if name:
            fields[name.group(1)] = value.group(1) if value else ""
    fields.pop("csrfmiddlewaretoken", None)
    return fields
