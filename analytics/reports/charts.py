"""Server-side SVG charts: small, readable, no JavaScript and nothing loaded from elsewhere.

Each function returns an inline SVG string (marked safe: every label is escaped here). Charts carry a <title> and
role="img" with an aria-label, so a screen reader gets the same numbers the table next to it shows.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

from django.utils.safestring import SafeString, mark_safe

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
    title: str = "",
) -> SafeString:
    low, high = _scale(values)
    left, right, top, bottom = 64, 36, 20, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(values) - 1, 1)

    def y_of(v: float) -> float:
        return top + plot_h - plot_h * (v - low) / (high - low)

    parts = [_frame(width, height, title)]
    for k in range(5):
        v = low + (high - low) * k / 4
        y = y_of(v)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        parts.append(_text(left - 6, y + 4, format_value(v, unit), anchor="end"))
    points = []
    for i, (lab, v) in enumerate(zip(labels, values, strict=True)):
        x = left + plot_w * i / n
        if i % max(1, len(labels) // 6) == 0 or i == len(labels) - 1:
            parts.append(_text(x, height - bottom + 16, lab, anchor="middle"))
        if v is not None:
            y = y_of(v)
            points.append(f"{x:.1f},{y:.1f}")
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{ACCENT}"><title>{escape(lab)}: '
                f"{escape(format_value(v, unit))}</title></circle>"
            )
    parts.insert(1, f'<polyline fill="none" stroke="{ACCENT}" stroke-width="2" points="{" ".join(points)}"/>')
    parts.append("</svg>")
    return mark_safe("".join(parts))


def bar_chart(
    labels: Sequence[str], values: Sequence[float | None], *, unit: str = "count", width: int = 640, height: int = 240,
    title: str = "", color: str = ACCENT,
) -> SafeString:
    """Vertical bars with the value printed on each bar; histograms are bar charts of bin counts."""
    low, high = _scale(values)
    left, right, top, bottom = 56, 12, 24, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    count = max(len(values), 1)
    slot = plot_w / count
    bar_w = max(4.0, slot * 0.7)
    parts = [_frame(width, height, title)]
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="{MUTED}"/>')
    for i, (lab, v) in enumerate(zip(labels, values, strict=True)):
        x = left + slot * i + (slot - bar_w) / 2
        value = v or 0.0
        h = plot_h * (value - low) / (high - low) if high > low else 0
        y = top + plot_h - h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{color}">'
            f"<title>{escape(lab)}: {escape(format_value(v, unit))}</title></rect>"
        )
        parts.append(_text(x + bar_w / 2, y - 4, format_value(v, unit), anchor="middle", size=11))
        parts.append(_text(x + bar_w / 2, top + plot_h + 16, lab, anchor="middle", size=11))
    parts.append("</svg>")
    return mark_safe("".join(parts))


def paired_bar_chart(
    labels: Sequence[str], first: Sequence[float | None], second: Sequence[float | None], *, names: tuple[str, str],
    unit: str = "count", width: int = 640, height: int = 240, title: str = "",
) -> SafeString:
    """Two bars per label (e.g. predicted vs actual per decile) with a legend."""
    low, high = _scale([*first, *second])
    left, right, top, bottom = 56, 12, 30, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    slot = plot_w / max(len(labels), 1)
    bar_w = max(3.0, slot * 0.36)
    colors = (ACCENT, "#f59e0b")
    parts = [_frame(width, height, title)]
    for k, (name, color) in enumerate(zip(names, colors, strict=True)):
        parts.append(f'<rect x="{left + k * 110}" y="6" width="12" height="12" fill="{color}"/>')
        parts.append(_text(left + k * 110 + 16, 16, name, size=12))
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="{MUTED}"/>')
    for i, lab in enumerate(labels):
        for k, series in enumerate((first, second)):
            v = series[i] or 0.0
            h = plot_h * (v - low) / (high - low)
            x = left + slot * i + slot * 0.12 + k * bar_w
            parts.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{colors[k]}">'
                f"<title>{escape(lab)} {escape(names[k])}: {escape(format_value(series[i], unit))}</title></rect>"
            )
        parts.append(_text(left + slot * i + slot / 2, top + plot_h + 16, lab, anchor="middle"))
    parts.append(_text(left - 6, top + 4, format_value(high, unit), anchor="end"))
    parts.append(_text(left - 6, top + plot_h, format_value(low, unit), anchor="end"))
    parts.append("</svg>")
    return mark_safe("".join(parts))


def stacked_bar_chart(
    labels: Sequence[str], series: Sequence[tuple[str, str, Sequence[float]]], *, unit: str = "money",
    width: int = 720, height: int = 280, title: str = "",
) -> SafeString:
    """Bars stacked up from zero for positive series and down for negative ones (MRR gained above the axis, lost
    below it), one bar per label; series are (name, color, values) and the legend names them in order."""
    ups = [sum(max(0.0, s[2][i]) for s in series) for i in range(len(labels))]
    downs = [sum(min(0.0, s[2][i]) for s in series) for i in range(len(labels))]
    high, low = max([*ups, 1e-9]), min([*downs, 0.0])
    left, right, top, bottom = 64, 12, 34, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    slot = plot_w / max(len(labels), 1)
    bar_w = max(4.0, slot * 0.6)
    scale = plot_h / (high - low)
    zero = top + high * scale
    parts = [_frame(width, height, title)]
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
    parts.append(_text(left - 6, top + 4, format_value(high, unit), anchor="end"))
    if low < 0:
        parts.append(_text(left - 6, top + plot_h, format_value(low, unit), anchor="end"))
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
        parts.append(_text(label_w - 6, y + 14, lab[:34], anchor="end", size=12))
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{ACCENT}"/>')
        parts.append(_text(label_w + w + 4, y + 14, format_value(v, unit), size=12))
    parts.append("</svg>")
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
    t = escape(title)
    return (
        f'<svg class="chart" role="img" aria-label="{t}" width="100%" viewBox="0 0 {width} {height}" '
        f'preserveAspectRatio="xMinYMin meet" style="max-width:{width}px" {FONT}><title>{t}</title>'
    )


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: int = 11) -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{MUTED}" text-anchor="{anchor}">{escape(text)}</text>'


Formatter = Callable[[float | None], str]
