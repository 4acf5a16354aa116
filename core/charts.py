"""Charts drawn on the server as SVG: the geometry is computed here, `components/chart.html`
draws it. No script, nothing fetched at run time, nothing the CSP has to allow (ADR 0009).

Three shapes cover every page: columns over buckets (stacked by series: decisions by outcome,
sends per minute, a score histogram), horizontal bars (a funnel) and signed bars around zero
(a prediction's drivers). Every chart also carries its numbers as a table, for screen readers
and for anyone who would rather read them.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

WIDTH = 600  # a chart across a page; a dashboard panel draws PANEL_WIDTH
PANEL_WIDTH = 380
PAGE_WIDTH = 1000  # a chart across a whole wide page, kept low
COLUMNS_HEIGHT = 180
AXIS_LEFT = 44  # room for the y-axis labels
AXIS_BOTTOM = 20  # room for the x-axis labels
BAR_HEIGHT = 18
BAR_GAP = 6
LABEL_WIDTH = 150  # a horizontal bar's name, left of it
VALUE_WIDTH = 70  # its number, right of it
MAX_X_LABELS = 8

# Series whose names say good, watch or bad get those colours; others take the palette in turn.
TONES = {
    "approve": "good",
    "low": "good",
    "delivered": "good",
    "review": "watch",
    "medium": "watch",
    "queued": "watch",
    "decline": "bad",
    "high": "bad",
    "failed": "bad",
    "undelivered": "bad",
    "rejected": "bad",
}
PALETTE_SIZE = 6


def series_class(name: str, index: int) -> str:
    return f"tone-{TONES[name]}" if name in TONES else f"series-{index % PALETTE_SIZE}"


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "middle"


@dataclass(frozen=True)
class Chart:
    """What the template draws: a viewBox, rectangles, text, a legend and the data table."""

    title: str
    width: int
    height: int
    rects: list[Rect]
    labels: list[Label]
    legend: list[tuple[str, str]]
    table_head: list[str]
    table_rows: list[list[str]]
    lines: Sequence[tuple[float, float, float, float]] = field(default_factory=list)
    empty: bool = False


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.3f}"


def columns(
    *,
    title: str,
    buckets: Sequence[str],
    series: Mapping[str, Sequence[float]],
    width: int = WIDTH,
    at_least: float = 0,
) -> Chart:
    """Columns over `buckets`, one stacked segment per series (same length as `buckets`).
    `width` is in the units of the text: a narrow panel draws a narrow chart, so its labels
    stay readable once scaled to the panel. The y-axis reaches `at_least` (room for a limit)."""
    names = list(series)
    totals = [sum(series[name][i] for name in names) for i in range(len(buckets))]
    top = max(*totals, at_least, 0) or 1
    plot_width = width - AXIS_LEFT
    plot_height = COLUMNS_HEIGHT - AXIS_BOTTOM
    step = plot_width / max(len(buckets), 1)
    gap = min(step * 0.2, 4)
    rects: list[Rect] = []
    for i, bucket in enumerate(buckets):
        y = float(plot_height)
        for index, name in enumerate(names):
            value = series[name][i]
            if not value:
                continue
            height = plot_height * value / top
            y -= height
            rects.append(
                Rect(
                    x=round(AXIS_LEFT + i * step + gap / 2, 2),
                    y=round(y, 2),
                    width=round(step - gap, 2),
                    height=round(height, 2),
                    css=series_class(name, index),
                    title=f"{bucket}: {name} {_number(value)}",
                )
            )
    every = max(1, -(-len(buckets) // max(2, MAX_X_LABELS * width // WIDTH)))
    labels = [
        Label(x=round(AXIS_LEFT + (i + 0.5) * step, 2), y=COLUMNS_HEIGHT - 5, text=bucket)
        for i, bucket in enumerate(buckets)
        if i % every == 0
    ]
    labels += [
        Label(
            x=AXIS_LEFT - 4, y=10, text=_number(top if any(totals) or at_least else 0), anchor="end"
        ),
        Label(x=AXIS_LEFT - 4, y=plot_height, text="0", anchor="end"),
    ]
    return Chart(
        title=title,
        width=width,
        height=COLUMNS_HEIGHT,
        rects=rects,
        labels=labels,
        legend=[(name, series_class(name, index)) for index, name in enumerate(names)],
        table_head=["", *names],
        table_rows=[
            [bucket, *(_number(series[name][i]) for name in names)]
            for i, bucket in enumerate(buckets)
        ],
        lines=[(AXIS_LEFT, plot_height, width, plot_height)],
        empty=not any(totals),
    )


def bars(
    *, title: str, values: Sequence[tuple[str, float]], signed: bool = False, width: int = WIDTH
) -> Chart:
    """Horizontal bars, one per (name, value); `signed` draws them either side of zero
    (positive to the right, in the 'bad' tone: for drivers, what raises the risk)."""
    height = len(values) * (BAR_HEIGHT + BAR_GAP) + BAR_GAP
    room = width - LABEL_WIDTH - VALUE_WIDTH
    largest = max((abs(value) for _name, value in values), default=0) or 1
    zero = LABEL_WIDTH + (room / 2 if signed else 0)
    scale = (room / 2 if signed else room) / largest
    rects: list[Rect] = []
    labels: list[Label] = []
    for i, (name, value) in enumerate(values):
        y = BAR_GAP + i * (BAR_HEIGHT + BAR_GAP)
        length = abs(value) * scale
        tone = "tone-bad" if value > 0 else "tone-good"
        css = tone if signed else series_class(name, i)
        rects.append(
            Rect(
                x=round(zero if value >= 0 else zero - length, 2),
                y=y,
                width=round(length, 2),
                height=BAR_HEIGHT,
                css=css,
                title=f"{name}: {_number(value)}",
            )
        )
        labels.append(Label(x=LABEL_WIDTH - 6, y=y + BAR_HEIGHT - 5, text=name, anchor="end"))
        labels.append(Label(x=width - 2, y=y + BAR_HEIGHT - 5, text=_number(value), anchor="end"))
    lines = [(zero, 0, zero, height)] if signed else []
    return Chart(
        title=title,
        width=width,
        height=max(height, BAR_HEIGHT),
        rects=rects,
        labels=labels,
        legend=[("raises", "tone-bad"), ("lowers", "tone-good")] if signed else [],
        table_head=["", "value"],
        table_rows=[[name, _number(value)] for name, value in values],
        lines=lines,
        empty=not any(value for _name, value in values),
    )


def histogram(
    *, title: str, counts: Sequence[int], low: float = 0.0, high: float = 1.0, width: int = WIDTH
) -> Chart:
    """Columns of equal-width bins between `low` and `high` (a score distribution)."""
    step = (high - low) / max(len(counts), 1)
    buckets = [f"{low + i * step:.1f}-{low + (i + 1) * step:.1f}" for i in range(len(counts))]
    return columns(title=title, buckets=buckets, series={"records": list(counts)}, width=width)


LIMIT_LINE = 2  # the thickness of a limit drawn across columns


def columns_with_limit(
    *,
    title: str,
    buckets: Sequence[str],
    series: Mapping[str, Sequence[float]],
    limit: float,
    limit_name: str,
    width: int = WIDTH,
) -> Chart:
    """Columns with a horizontal line at `limit` (a configured rate against what was done);
    the axis reaches a little above it, so the line and any column over it both show."""
    chart = columns(title=title, buckets=buckets, series=series, width=width, at_least=limit * 1.1)
    plot_height = COLUMNS_HEIGHT - AXIS_BOTTOM
    top = max([sum(values[i] for values in series.values()) for i in range(len(buckets))] or [0])
    top = max(top, limit * 1.1) or 1
    y = plot_height - plot_height * limit / top
    line = Rect(
        x=AXIS_LEFT,
        y=round(y - LIMIT_LINE / 2, 2),
        width=width - AXIS_LEFT,
        height=LIMIT_LINE,
        css="tone-bad",
        title=f"{limit_name}: {_number(limit)}",
    )
    return replace(
        chart,
        rects=[*chart.rects, line],
        legend=[*chart.legend, (f"{limit_name} ({_number(limit)})", "tone-bad")],
        table_head=[*chart.table_head, limit_name],
        table_rows=[[*row, _number(limit)] for row in chart.table_rows],
    )
