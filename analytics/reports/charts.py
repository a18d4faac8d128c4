"""Server-side SVG charts: small, readable, no JavaScript and nothing loaded from elsewhere.

Each function returns an inline SVG string (marked safe: every label is escaped here). Charts carry a <title> and
role="img" with an aria-label, so a screen reader gets the same numbers the table next to it shows.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

INK = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
ACCENT = "#2563eb"
FONT = 'font-family="system-ui, sans-serif"'


def format_value(value: float | None, unit: str = "count") -> str:
    if value is None:
        return "—"
    if unit == "percent":
        return f"{value * 100:.1f}%"
    if unit == "money":
        return f"{value:,.2f}"
    if unit == "days":
        return f"{value:.1f} d"
    if unit == "probability":
        return f"{value:.2f}"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _scale(values: Sequence[float | None]) -> tuple[float, float]:
    present = [v for v in values if v is not None]
    if not present:
        return 0.0, 1.0
    low, high = min(0.0, min(present)), max(present)
    if high == low:
        high = low + 1.0
    return low, high


def nice_step(span: float, max_ticks: int = 5) -> float:
    """The smallest 1-2-5 × 10^k step that covers `span` in at most `max_ticks` intervals."""
    if span <= 0:
        return 1.0
    raw = span / max(max_ticks, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * magnitude >= raw * (1 - 1e-9):
            return m * magnitude
    return 10 * magnitude


def nice_ticks(low: float, high: float, max_ticks: int = 5, *, unit: str = "count") -> list[float]:
    """Round tick values (multiples of a 1-2-5 step) from at or below `low` to at or above `high`.

    Percentages are fractions (0.25 = 25 %), so their step is chosen on the percent scale; counts never get a
    fractional step."""
    scale = 100.0 if unit == "percent" else 1.0
    lo, hi = low * scale, high * scale
    if hi <= lo:
        hi = lo + 1
    step = nice_step(hi - lo, max_ticks)
    if unit == "count":
        step = max(step, 1.0)
    start = math.floor(lo / step + 1e-9) * step
    end = math.ceil(hi / step - 1e-9) * step
    count = int(round((end - start) / step))
    return [round((start + k * step) / scale, 12) for k in range(count + 1)]


def tick_label(value: float, ticks: Sequence[float], unit: str) -> str:
    """A tick printed with as few decimals as its step needs (0 %, 20 %, 40 %; 0, 2,000, 4,000; 0.5, 1.0)."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    scale = 100.0 if unit == "percent" else 1.0
    step_scaled = step * scale
    decimals = 0 if step_scaled >= 1 or step_scaled == 0 else min(4, -math.floor(math.log10(step_scaled) + 1e-9))
    shown = value * scale
    text = f"{shown:,.{decimals}f}"
    return f"{text}%" if unit == "percent" else text


def label_stride(count: int, longest: int, available: float, *, size: int = 11) -> int:
    """Show every k-th category label so that labels (about 0.6 em per character plus a gap) never overlap."""
    if count <= 1:
        return 1
    needed = longest * size * 0.62 + 8
    per_slot = available / count
    return max(1, math.ceil(needed / per_slot))


def _data_table(labels: Sequence[str], columns: Sequence[tuple[str, Sequence[float | None]]], unit: str,
                partial_last: bool = False) -> str:
    """The readable table behind a chart: the same numbers, one row per label, collapsed under the chart."""
    head = "".join(f'<th scope="col">{escape(name)}</th>' for name, _v in columns)
    rows = []
    for i, lab in enumerate(labels):
        shown = escape(lab) + (f" ({escape(gettext('partial'))})" if partial_last and i == len(labels) - 1 else "")
        cells = "".join(f"<td>{escape(format_value(values[i], unit))}</td>" for _n, values in columns)
        rows.append(f'<tr><th scope="row">{shown}</th>{cells}</tr>')
    return (
        f'<details class="chart-table"><summary>{escape(gettext("Show the numbers as a table"))}</summary>'
        f'<div class="table-wrap"><table class="data compact"><thead><tr><th scope="col"></th>{head}</tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table></div></details>'
    )


def sparkline(values: Sequence[float | None], *, width: int = 140, height: int = 36, label: str = "") -> SafeString:
    """A trend line without axes; gaps (None) break the line rather than drop to zero."""
    low, high = _scale(values)
    n = max(len(values) - 1, 1)
    segments: list[list[str]] = [[]]
    last_point = ""
    for i, v in enumerate(values):
        if v is None:
            segments.append([])
            continue
        x = 2 + (width - 4) * i / n
        y = height - 3 - (height - 6) * (v - low) / (high - low)
        segments[-1].append(f"{x:.1f},{y:.1f}")
        last_point = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{ACCENT}"/>'
    lines = "".join(
        f'<polyline fill="none" stroke="{ACCENT}" stroke-width="1.8" points="{" ".join(seg)}"/>' for seg in segments if seg
    )
    title = escape(label)
    return mark_safe(
        f'<svg class="sparkline" role="img" aria-label="{title}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{title}</title>{lines}{last_point}</svg>'
    )


def line_chart(
    labels: Sequence[str], values: Sequence[float | None], *, unit: str = "count", width: int = 640, height: int = 240,
    title: str = "", partial_last: bool = False,
) -> SafeString:
    """A line over round y ticks. `partial_last` marks the last period as still running (a dashed last segment,
    a hollow point and "(partial)" on its label), so a month that is half over does not read as a drop."""
    low, high = _scale(values)
    ticks = nice_ticks(low, high, unit=unit)
    low, high = ticks[0], ticks[-1]
    left, right, top, bottom = 64, 36, 20, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(values) - 1, 1)

    def y_of(v: float) -> float:
        return top + plot_h - plot_h * (v - low) / (high - low)

    parts = [_frame(width, height, title)]
    for v in ticks:
        y = y_of(v)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        parts.append(_text(left - 6, y + 4, tick_label(v, ticks, unit), anchor="end", css="tick"))
    shown_labels = [
        f"{lab} ({gettext('partial')})" if partial_last and i == len(labels) - 1 else str(lab)
        for i, lab in enumerate(labels)
    ]
    stride = label_stride(len(labels), max((len(x) for x in shown_labels), default=1), plot_w + 40)
    points: list[tuple[float, float]] = []
    last = len(labels) - 1
    for i, (lab, v) in enumerate(zip(shown_labels, values, strict=True)):
        x = left + plot_w * i / n
        # The last label always shows; the one before it gives way when they would touch.
        if (i % stride == 0 and (last - i >= stride or i == last)) or i == last:
            parts.append(_text(x, height - bottom + 16, lab, anchor="end" if i == last and i else "middle",
                               css="xlabel"))
        if v is not None:
            y = y_of(v)
            points.append((x, y))
            hollow = partial_last and i == last
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{"#fff" if hollow else ACCENT}" stroke="{ACCENT}">'
                f"<title>{escape(lab)}: {escape(format_value(v, unit))}</title></circle>"
            )
    solid = points[:-1] if partial_last and len(points) > 1 and values[-1] is not None else points
    line = f'<polyline fill="none" stroke="{ACCENT}" stroke-width="2" points="{_pts(solid)}"/>'
    if solid is not points:
        line += (f'<polyline class="partial" fill="none" stroke="{ACCENT}" stroke-width="2" stroke-dasharray="4 4" '
                 f'points="{_pts(points[-2:])}"/>')
    parts.insert(1, line)
    parts.append("</svg>")
    parts.append(_data_table(labels, [(title or gettext("Value"), values)], unit, partial_last))
    parts.append("</div>")
    return mark_safe("".join(parts))


def _pts(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)


def bar_chart(
    labels: Sequence[str], values: Sequence[float | None], *, unit: str = "count", width: int = 640, height: int = 240,
    title: str = "", color: str = ACCENT,
) -> SafeString:
    """Vertical bars over round y ticks, the value printed on each bar where it fits; histograms are bar charts of
    bin counts. Category labels thin out (every k-th) rather than overlap."""
    low, high = _scale(values)
    ticks = nice_ticks(low, high, unit=unit)
    low, high = ticks[0], ticks[-1]
    left, right, top, bottom = 56, 12, 24, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    count = max(len(values), 1)
    slot = plot_w / count
    bar_w = max(4.0, slot * 0.7)
    parts = [_frame(width, height, title)]
    for v in ticks:
        y = top + plot_h - plot_h * (v - low) / (high - low)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        parts.append(_text(left - 6, y + 4, tick_label(v, ticks, unit), anchor="end", css="tick"))
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="{MUTED}"/>')
    stride = label_stride(len(labels), max((len(str(x)) for x in labels), default=1), plot_w)
    value_texts = [format_value(v, unit) for v in values]
    values_fit = max((len(t) for t in value_texts), default=1) * 11 * 0.62 + 4 <= slot
    for i, (lab, v) in enumerate(zip(labels, values, strict=True)):
        x = left + slot * i + (slot - bar_w) / 2
        value = v or 0.0
        h = plot_h * (value - low) / (high - low) if high > low else 0
        y = top + plot_h - h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{color}">'
            f"<title>{escape(lab)}: {escape(value_texts[i])}</title></rect>"
        )
        if values_fit:
            parts.append(_text(x + bar_w / 2, y - 4, value_texts[i], anchor="middle", size=11, css="value"))
        if i % stride == 0:
            parts.append(_text(x + bar_w / 2, top + plot_h + 16, lab, anchor="middle", size=11, css="xlabel"))
    parts.append("</svg>")
    parts.append(_data_table(labels, [(title or gettext("Value"), values)], unit))
    parts.append("</div>")
    return mark_safe("".join(parts))


def paired_bar_chart(
    labels: Sequence[str], first: Sequence[float | None], second: Sequence[float | None], *, names: tuple[str, str],
    unit: str = "count", width: int = 640, height: int = 240, title: str = "",
) -> SafeString:
    """Two bars per label (e.g. predicted vs actual per decile) with a legend, over round y ticks."""
    low, high = _scale([*first, *second])
    ticks = nice_ticks(low, high, unit=unit)
    low, high = ticks[0], ticks[-1]
    left, right, top, bottom = 56, 12, 30, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    slot = plot_w / max(len(labels), 1)
    bar_w = max(3.0, slot * 0.36)
    colors = (ACCENT, "#f59e0b")
    parts = [_frame(width, height, title)]
    legend_x = left
    for name, color in zip(names, colors, strict=True):
        parts.append(f'<rect x="{legend_x}" y="6" width="12" height="12" fill="{color}"/>')
        parts.append(_text(legend_x + 16, 16, name, size=12))
        legend_x += 16 + int(len(name) * 12 * 0.62) + 24  # the next entry starts after this one's text
    for v in ticks:
        y = top + plot_h - plot_h * (v - low) / (high - low)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        parts.append(_text(left - 6, y + 4, tick_label(v, ticks, unit), anchor="end", css="tick"))
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="{MUTED}"/>')
    stride = label_stride(len(labels), max((len(str(x)) for x in labels), default=1), plot_w)
    for i, lab in enumerate(labels):
        for k, series in enumerate((first, second)):
            v = series[i] or 0.0
            h = plot_h * (v - low) / (high - low)
            x = left + slot * i + slot * 0.12 + k * bar_w
            parts.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{colors[k]}">'
                f"<title>{escape(lab)} {escape(names[k])}: {escape(format_value(series[i], unit))}</title></rect>"
            )
        if i % stride == 0:
            parts.append(_text(left + slot * i + slot / 2, top + plot_h + 16, lab, anchor="middle", css="xlabel"))
    parts.append("</svg>")
    parts.append(_data_table(labels, [(names[0], first), (names[1], second)], unit))
    parts.append("</div>")
    return mark_safe("".join(parts))


def stacked_bar_chart(
    labels: Sequence[str], series: Sequence[tuple[str, str, Sequence[float]]], *, unit: str = "money",
    width: int = 720, height: int = 280, title: str = "",
) -> SafeString:
    """Bars stacked up from zero for positive series and down for negative ones (MRR gained above the axis, lost
    below it), one bar per label; series are (name, color, values) and the legend names them in order."""
    ups = [sum(max(0.0, s[2][i]) for s in series) for i in range(len(labels))]
    downs = [sum(min(0.0, s[2][i]) for s in series) for i in range(len(labels))]
    # Round ticks (issue 18): the axis runs from a round step at or below the largest loss to one at or above the
    # largest gain, so zero is always a tick and every label is a multiple of a 1-2-5 step.
    ticks = nice_ticks(min([*downs, 0.0]), max([*ups, 1e-9]), unit=unit)
    high, low = ticks[-1], ticks[0]
    left, right, top, bottom = 64, 12, 34, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    slot = plot_w / max(len(labels), 1)
    bar_w = max(4.0, slot * 0.6)
    scale = plot_h / (high - low)
    zero = top + high * scale
    parts = [_frame(width, height, title)]
    for v in ticks:
        y = zero - v * scale
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        parts.append(_text(left - 6, y + 4, tick_label(v, ticks, unit), anchor="end", css="tick"))
    for k, (name, color, _values) in enumerate(series):
        parts.append(f'<rect x="{left + k * 120}" y="6" width="12" height="12" fill="{color}"/>')
        parts.append(_text(left + k * 120 + 16, 16, name, size=12))
    for i, lab in enumerate(labels):
        x = left + slot * i + (slot - bar_w) / 2
        above, below = zero, zero
        for name, color, values in series:
            v = values[i]
            if not v:
                continue
            h = abs(v) * scale
            if v > 0:
                above -= h
                y = above
            else:
                y = below
                below += h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{color}">'
                f"<title>{escape(lab)} {escape(name)}: {escape(format_value(v, unit))}</title></rect>"
            )
        parts.append(_text(x + bar_w / 2, top + plot_h + 16, lab, anchor="middle", size=11))
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{zero:.1f}" y2="{zero:.1f}" stroke="{MUTED}"/>')
    parts.append("</svg>")
    return mark_safe("".join(parts))


def hbar_chart(labels: Sequence[str], values: Sequence[float], *, unit: str = "count", width: int = 640,
               title: str = "") -> SafeString:
    """Horizontal bars for long labels (feature names, courses)."""
    row_h = 22
    height = 16 + row_h * max(len(values), 1)
    label_w = 220
    high = max([abs(v) for v in values] + [1e-9])
    parts = [_frame(width, height, title)]
    for i, (lab, v) in enumerate(zip(labels, values, strict=True)):
        y = 8 + row_h * i
        w = (width - label_w - 80) * abs(v) / high
        short = lab if len(lab) <= 30 else lab[:29] + "…"  # 30 characters at 12px fit the 220px label column
        parts.append(_text(label_w - 6, y + 14, short, anchor="end", size=12, css="ylabel", full=lab))
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{ACCENT}"/>')
        parts.append(_text(label_w + w + 4, y + 14, format_value(v, unit), size=12))
    parts.append("</svg>")
    parts.append(_data_table(labels, [(title or gettext("Value"), values)], unit))
    parts.append("</div>")
    return mark_safe("".join(parts))


def heat_color(value: float | None) -> str:
    """White → blue by share (0..1); text stays dark enough to read on every shade we produce."""
    if value is None:
        return "background:#f9fafb;color:#9ca3af"
    share = max(0.0, min(1.0, value))
    lightness = 97 - share * 45
    text = "#ffffff" if lightness < 62 else INK
    return f"background:hsl(217, 80%, {lightness:.0f}%);color:{text}"


def _frame(width: int, height: int, title: str) -> str:
    # Drawn at its own pixel size inside a scrolling box: on a phone the chart scrolls sideways and its labels stay
    # 11-12px instead of shrinking with the viewBox (docs: the 390px layout).
    t = escape(title)
    return (
        f'<div class="chart-wrap"><svg class="chart" role="img" aria-label="{t}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" {FONT}><title>{t}</title>'
    )


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: int = 11, css: str = "",
          full: str | None = None) -> str:
    klass = f' class="{css}"' if css else ""
    hint = f"<title>{escape(full)}</title>" if full and full != text else ""
    return (f'<text{klass} x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{MUTED}" '
            f'text-anchor="{anchor}">{hint}{escape(text)}</text>')


Formatter = Callable[[float | None], str]
