"""Server-rendered SVG charts of drift: coordinates computed here, drawn by the template.

No JavaScript and nothing fetched (the page's CSP allows neither): a chart is a few polylines
and the two threshold lines (0.1 watch, 0.25 act) in a viewBox.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from records.selectors import DriftSeries
from risk.selectors import DRIFT_ACT, DRIFT_WATCH

PALETTE = ("#1e6fd9", "#d97706", "#059669", "#7c3aed", "#db2777", "#0891b2")


@dataclass(frozen=True)
class ChartLine:
    label: str
    points: str  # "x,y x,y ..." for <polyline points=...>
    colour: str
    level: str
    latest: float
    label_y: int  # where its legend entry sits, right of the chart


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    top: float  # the PSI at the chart's top edge
    watch_y: float
    act_y: float
    lines: list[ChartLine]
    first: str  # the first and last window's dates, for the x axis
    last: str


def psi_chart(series: Sequence[DriftSeries], *, width: int = 640, height: int = 200) -> Chart:
    """One chart of these series over their shared windows (x: window order, y: PSI)."""
    ends = sorted({end for one in series for end, _psi in one.points})
    top = max([0.3, *(psi for one in series for _end, psi in one.points)]) * 1.1
    step = width / max(len(ends) - 1, 1)
    position = {end: index * step for index, end in enumerate(ends)}

    def y(psi: float) -> float:
        return round(height - psi / top * height, 1)

    lines = [
        ChartLine(
            label=one.feature,
            points=" ".join(f"{round(position[end], 1)},{y(psi)}" for end, psi in one.points),
            colour=PALETTE[index % len(PALETTE)],
            level=one.level,
            latest=one.latest,
            label_y=12 + 14 * index,
        )
        for index, one in enumerate(series)
    ]
    return Chart(
        width=width,
        height=height,
        top=round(top, 2),
        watch_y=y(DRIFT_WATCH),
        act_y=y(DRIFT_ACT),
        lines=lines,
        first=f"{ends[0]:%Y-%m-%d}" if ends else "",
        last=f"{ends[-1]:%Y-%m-%d}" if ends else "",
    )
