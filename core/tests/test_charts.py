"""Server-drawn charts, CSV cells for spreadsheets and the overview's time buckets: pure code."""

from datetime import UTC, datetime, timedelta

from core import charts
from core.spreadsheets import csv_lines, spreadsheet_safe
from core.timeseries import TIME_RANGES, series_fill, time_range_get


def test_columns_stack_series_in_proportion_to_the_tallest_bucket():
    chart = charts.columns(
        title="t", buckets=["a", "b"], series={"approve": [2, 1], "decline": [2, 0]}
    )

    heights = {(rect.title, rect.height) for rect in chart.rects}
    plot = charts.COLUMNS_HEIGHT - charts.AXIS_BOTTOM
    assert heights == {
        ("a: approve 2", plot / 2),
        ("a: decline 2", plot / 2),
        ("b: approve 1", plot / 4),
    }
    assert [rect.css for rect in chart.rects] == ["tone-good", "tone-bad", "tone-good"]
    assert chart.table_rows == [["a", "2", "2"], ["b", "1", "0"]]
    assert not chart.empty


def test_signed_bars_grow_either_side_of_zero():
    chart = charts.bars(title="d", values=[("age", 0.5), ("job", -0.25)], signed=True)

    raising, lowering = chart.rects
    zero = chart.lines[0][0]
    assert (raising.x, raising.css) == (zero, "tone-bad")
    assert (round(lowering.x + lowering.width, 2), lowering.css) == (zero, "tone-good")
    assert raising.width == 2 * lowering.width


def test_a_chart_of_zeros_is_empty():
    assert charts.histogram(title="h", counts=[0, 0, 0]).empty


def test_cells_a_spreadsheet_would_run_are_written_as_text():
    cells = ["=1+2", "+1", "-2", "@SUM(A1)", "\tx", "\rx", "plain", 3, -0.5, None]

    assert [spreadsheet_safe(cell) for cell in cells] == [
        "'=1+2",
        "'+1",
        "'-2",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
        "plain",
        3,
        -0.5,
        None,
    ]
    assert list(csv_lines(["a"], [["=cmd|' /C calc'!A0"]])) == [
        "a\r\n",
        "'=cmd|' /C calc'!A0\r\n",
    ]


def test_a_time_range_has_whole_buckets_ending_with_the_current_one():
    now = datetime(2026, 1, 2, 10, 17, tzinfo=UTC)

    starts = TIME_RANGES["1h"].starts(now=now)

    assert len(starts) == 12
    assert starts[-1] == datetime(2026, 1, 2, 10, 15, tzinfo=UTC)
    assert starts[0] == starts[-1] - timedelta(minutes=55)
    assert time_range_get("nonsense").key == "24h"


def test_series_are_filled_with_zeros_for_empty_buckets():
    starts = TIME_RANGES["24h"].starts(now=datetime(2026, 1, 2, 10, tzinfo=UTC))

    series = series_fill(
        [
            (starts[1], "review", 2),
            (starts[1], "approve", 1),
            (starts[0] - timedelta(hours=1), "x", 9),
        ],
        starts=starts,
        names=["approve"],
    )

    assert list(series) == ["approve", "review"]
    assert series["review"][:3] == [0, 2, 0]
    assert sum(series["approve"]) == 1


def test_a_limit_line_is_drawn_at_its_height_with_room_above_it():
    chart = charts.columns_with_limit(
        title="Sent per minute",
        buckets=["10:00", "10:01"],
        series={"sent": [30, 0]},
        limit=100,
        limit_name="rate limit",
    )

    plot_height = charts.COLUMNS_HEIGHT - charts.AXIS_BOTTOM
    column, line = chart.rects
    assert column.height == round(plot_height * 30 / 110, 2)  # the axis reaches 110 % of it
    assert line.title == "rate limit: 100"
    assert line.y + line.height / 2 == round(plot_height - plot_height * 100 / 110, 2)
    assert line.width == charts.WIDTH - charts.AXIS_LEFT
    assert ("rate limit (100)", "tone-bad") in chart.legend
    assert chart.table_rows == [["10:00", "30", "100"], ["10:01", "0", "100"]]


def test_a_column_over_the_limit_sets_the_axis():
    chart = charts.columns_with_limit(
        title="t", buckets=["a"], series={"sent": [300]}, limit=100, limit_name="limit"
    )
    plot_height = charts.COLUMNS_HEIGHT - charts.AXIS_BOTTOM
    column, line = chart.rects
    assert (column.y, column.height) == (0, plot_height)
    assert line.y + line.height / 2 == round(plot_height * 2 / 3, 2)  # 100 of 300
