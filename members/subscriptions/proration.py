"""Proration arithmetic for plan changes (pure: amounts and instants in, amounts out).

Upgrade (a dearer tier, same billing period), applied now:
    unused   = (period end - now) / (period end - period start)            exact, in seconds
    credit   = unused x what the current period is worth (what was paid for it; list price when nothing was)
    charge   = unused x the new tier's price for the period
    due now  = max(0, charge - credit); the period end does not move.
Monthly -> yearly, applied now: a new yearly period starts now; due now = max(0, yearly price - credit).
Downgrades and yearly -> monthly wait for the period end and are charged by that renewal: due now = 0.
Credit beyond what is due is not carried over (it cannot arise for an upgrade: the new price is higher).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from members.commerce.pricing import ZERO, money


@dataclass(frozen=True)
class Proration:
    unused: Decimal  # fraction of the current period still to run, 0..1
    credit: Decimal
    charge: Decimal

    @property
    def due(self) -> Decimal:
        return max(ZERO, money(self.charge - self.credit))


def unused_fraction(*, start: datetime, end: datetime, when: datetime) -> Decimal:
    total = (end - start).total_seconds()
    if total <= 0:
        return Decimal(0)
    left = min(max((end - when).total_seconds(), 0.0), total)
    return Decimal(str(left)) / Decimal(str(total))


def prorate_upgrade(*, start: datetime, end: datetime, when: datetime, period_value: Decimal, new_price: Decimal) -> Proration:
    unused = unused_fraction(start=start, end=end, when=when)
    return Proration(unused=unused, credit=money(period_value * unused), charge=money(new_price * unused))


def prorate_switch_to_yearly(
    *, start: datetime, end: datetime, when: datetime, period_value: Decimal, yearly_price: Decimal
) -> Proration:
    unused = unused_fraction(start=start, end=end, when=when)
    return Proration(unused=unused, credit=money(period_value * unused), charge=money(yearly_price))
