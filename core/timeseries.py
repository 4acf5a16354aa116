"""Time ranges for the overview (last hour, day, week, month) and counting rows per bucket.

PostgreSQL's `date_bin` puts each timestamp in its bucket in the query, so a panel costs one
grouped query whatever the number of rows; the empty buckets are filled in here.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import DateTimeField, F, Func, Value
from django.utils import timezone

# Buckets are counted from this instant, so the same bucket has the same start in every query.
ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class TimeRange:
    key: str
    label: str
    span: timedelta
    bucket: timedelta
    label_format: str  # strftime of a bucket's start, in the viewer's time zone

    def starts(self, *, now: datetime) -> list[datetime]:
        """Every bucket's start, oldest first; the last one holds `now`."""
        first = _floor(now - self.span + self.bucket, self.bucket)
        count = int(self.span / self.bucket)
        return [first + i * self.bucket for i in range(count)]

    def since(self, *, now: datetime) -> datetime:
        return self.starts(now=now)[0]

    def bucket_labels(self, starts: list[datetime]) -> list[str]:
        return [timezone.localtime(start).strftime(self.label_format) for start in starts]


def _floor(moment: datetime, bucket: timedelta) -> datetime:
    return ORIGIN + ((moment - ORIGIN) // bucket) * bucket


TIME_RANGES: dict[str, TimeRange] = {
    r.key: r
    for r in (
        TimeRange("1h", "Last hour", timedelta(hours=1), timedelta(minutes=5), "%H:%M"),
        TimeRange("24h", "Last 24 hours", timedelta(hours=24), timedelta(hours=1), "%H:00"),
        TimeRange("7d", "Last 7 days", timedelta(days=7), timedelta(hours=6), "%a %H:00"),
        TimeRange("30d", "Last 30 days", timedelta(days=30), timedelta(days=1), "%b %d"),
    )
}
DEFAULT_RANGE = "24h"


def time_range_get(key: str | None) -> TimeRange:
    """The range named `key`, or the default for anything else (a link typed by hand)."""
    return TIME_RANGES.get(key or "", TIME_RANGES[DEFAULT_RANGE])


class DateBin(Func):
    function = "date_bin"
    output_field = DateTimeField()


def date_bin(field: str, bucket: timedelta) -> DateBin:
    """The start of the bucket `field` falls in (PostgreSQL 14+)."""
    return DateBin(Value(bucket), F(field), Value(ORIGIN))


def series_fill(
    rows: Iterable[tuple[datetime, str, int]], *, starts: list[datetime], names: Iterable[str] = ()
) -> dict[str, list[int]]:
    """`(bucket start, series name, count)` rows as one list of counts per series, a zero for
    every bucket without rows; `names` come first, in their order, even when empty."""
    index = {start: i for i, start in enumerate(starts)}
    series: dict[str, list[int]] = {name: [0] * len(starts) for name in names}
    for start, name, count in rows:
        position = index.get(start)
        if position is not None:
            series.setdefault(name, [0] * len(starts))[position] += count
    return series
