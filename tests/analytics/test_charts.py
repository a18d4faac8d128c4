"""Staff charts: round ticks, labels that do not overlap, the partial period marked, a table behind every chart."""
from __future__ import annotations

import math
import re

import pytest

from analytics.reports import charts


def _ticks(svg: str) -> list[str]:
    return re.findall(r'<text class="tick"[^>]*>([^<]*)</text>', svg)


def _round(text: str) -> bool:
    number = float(text.rstrip("%").replace(",", ""))
    if number == 0:
        return True
    mantissa = number / 10 ** math.floor(math.log10(abs(number)))
    return round(mantissa, 6) in {1, 2, 3, 4, 5, 6, 7, 8, 9, 1.5, 2.5, 7.5}


@pytest.mark.parametrize(("values", "unit", "expected"), [
    ([0, 1753.89, 3507.79], "money", ["0", "1,000", "2,000", "3,000", "4,000"]),  # was 0.00, 1,753.89, 3,507.79
    ([0.0, 0.208, 0.417], "percent", ["0%", "10%", "20%", "30%", "40%", "50%"]),  # was 0.0 %, 20.8 %, 41.7 %
    ([3, 7], "count", ["0", "2", "4", "6", "8"]),
])
def test_line_chart_ticks_are_round_numbers(values, unit, expected):
    svg = str(charts.line_chart([f"2026-{m:02d}" for m in range(1, len(values) + 1)], values, unit=unit, title="t"))
    assert _ticks(svg) == expected


def test_paired_bar_chart_has_round_ticks_not_just_its_extremes():
    svg = str(charts.paired_bar_chart([str(d) for d in range(1, 11)], [i / 10 for i in range(10)],
                                      [0.0] * 9 + [0.979], names=("predicted", "actual"), unit="percent"))
    ticks = _ticks(svg)
    assert ticks == ["0%", "20%", "40%", "60%", "80%", "100%"]
    assert all(_round(t) for t in ticks)


def test_category_labels_thin_out_instead_of_overlapping():
    labels = [f"2025-{m:02d}-long-label" for m in range(1, 25)]
    svg = str(charts.bar_chart(labels, list(range(24)), title="t"))
    xs = [float(x) for x in re.findall(r'<text class="xlabel" x="([\d.]+)"', svg)]
    assert 1 < len(xs) < len(labels)
    width = len(labels[0]) * 11 * 0.62
    assert all(b - a >= width for a, b in zip(xs, xs[1:], strict=False))


def test_the_partial_last_period_is_marked_and_dashed():
    svg = str(charts.line_chart(["2026-10", "2026-11", "2026-12"], [10, 12, 3], title="MRR", partial_last=True))
    assert "2026-12 (partial)" in svg and 'class="partial"' in svg and 'stroke-dasharray' in svg
    complete = str(charts.line_chart(["2026-10", "2026-11", "2026-12"], [10, 12, 3], title="MRR"))
    assert "(partial)" not in complete and 'class="partial"' not in complete


def test_every_chart_has_a_table_with_its_numbers():
    for svg in (
        charts.line_chart(["a", "b"], [1, 2], title="t"),
        charts.bar_chart(["a", "b"], [1, 2], title="t"),
        charts.paired_bar_chart(["a"], [1], [2], names=("x", "y")),
        charts.hbar_chart(["a", "b"], [1.0, 2.0], title="t"),
    ):
        table = str(svg).split("<details", 1)[1]
        assert "<table" in table and ">a</th>" in table and "<td>2</td>" in table
