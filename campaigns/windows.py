"""Quiet hours: a message goes only when the local time is inside the window in every zone."""

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

LOOKAHEAD_DAYS = 4


@dataclass(frozen=True)
class SendWindow:
    """Local wall-clock window; `end` before `start` means it spans midnight."""

    start: time
    end: time

    def contains(self, local: time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def as_dict(self) -> dict[str, str]:
        return {"start": self.start.strftime("%H:%M"), "end": self.end.strftime("%H:%M")}


# Where no campaign says otherwise (transactional messages, a config without a window).
DEFAULT_WINDOW = SendWindow(start=time(8, 0), end=time(21, 0))


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def inside_window(moment: datetime, zones: tuple[str, ...], window: SendWindow) -> bool:
    """True when `moment` is inside the window in every candidate zone."""
    return all(window.contains(moment.astimezone(_zone(zone)).time()) for zone in zones)


def next_allowed(moment: datetime, zones: tuple[str, ...], window: SendWindow) -> datetime | None:
    """The first minute at or after `moment` inside the window in every zone, or None.

    The allowed set is an intersection of per-zone intervals, so its earliest point after
    `moment` is either `moment` itself or the start of some zone's window: checking those
    candidates is exact, with no minute-by-minute scan.
    """
    moment = moment.astimezone(UTC)
    if inside_window(moment, zones, window):
        return moment
    candidates = []
    for zone_name in zones:
        zone = _zone(zone_name)
        local_day = moment.astimezone(zone).date()
        for offset in range(LOOKAHEAD_DAYS + 1):
            day = local_day + timedelta(days=offset)
            start = datetime.combine(day, window.start, tzinfo=zone).astimezone(UTC)
            if start > moment:
                candidates.append(start)
    for candidate in sorted(candidates):
        if inside_window(candidate, zones, window):
            return candidate
    return None
