"""The shared send-rate limit, counted in SMS segments, paced, stored where every worker sees it.

A GCRA (generic cell rate algorithm) schedule: each bucket keeps one number, the time its next
segment is due. A reservation of `cost` segments is given the slot at that time (or now, if it
has passed) and moves it on by cost / rate seconds, so segments leave evenly spaced, one every
1 / rate seconds, with no burst after an idle spell. A moving window (what `limits` offers)
caps each one-second span too, but grants a whole second's tokens at once when the window
frees, and those grants reached the provider bunched: 25 in one second against a limit of 20.

The storage comes from RATE_LIMIT_STORAGE_URL: Redis when configured (one schedule for every
worker process, kept by a Lua script on Redis's own clock), else memory (one schedule per
process: fine for development, not for several workers).
"""

import threading
import time
from functools import lru_cache
from typing import Protocol

import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

KEY_PREFIX = "sms-rate:"

# KEYS[1]: the bucket. ARGV: microseconds per segment, cost, the longest acceptable wait in
# microseconds. Returns the wait in microseconds before the first reserved segment is due, or
# -1 (nothing reserved) when that wait would be longer than acceptable.
_RESERVE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local due = tonumber(redis.call('GET', KEYS[1]) or '0')
if due < now then due = now end
local wait = due - now
if wait > tonumber(ARGV[3]) then return -1 end
local after = due + tonumber(ARGV[1]) * tonumber(ARGV[2])
local keep_ms = math.floor((after - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%d', after), 'PX', keep_ms)
return wait
"""


class _Schedule(Protocol):
    def reserve(self, key: str, interval_us: int, cost: int, max_wait_us: int) -> int: ...

    def clear(self, key: str) -> None: ...


class _RedisSchedule:
    def __init__(self, url: str):
        self.client = redis.Redis.from_url(url)
        self.script = self.client.register_script(_RESERVE)

    def reserve(self, key: str, interval_us: int, cost: int, max_wait_us: int) -> int:
        return int(self.script(keys=[KEY_PREFIX + key], args=[interval_us, cost, max_wait_us]))

    def clear(self, key: str) -> None:
        self.client.delete(KEY_PREFIX + key)


class _MemorySchedule:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.due: dict[str, int] = {}

    def reserve(self, key: str, interval_us: int, cost: int, max_wait_us: int) -> int:
        with self.lock:
            now = time.time_ns() // 1000
            due = max(self.due.get(key, 0), now)
            if due - now > max_wait_us:
                return -1
            self.due[key] = due + interval_us * cost
            return due - now

    def clear(self, key: str) -> None:
        with self.lock:
            self.due.pop(key, None)


@lru_cache(maxsize=4)
def _schedule(storage_url: str) -> _Schedule:
    if storage_url.startswith("memory://"):
        return _MemorySchedule()
    if storage_url.startswith(("redis://", "rediss://", "unix://")):
        return _RedisSchedule(storage_url)
    raise ImproperlyConfigured(
        f"RATE_LIMIT_STORAGE_URL must be memory:// or a Redis URL, not {storage_url!r}."
    )


def rate_limit_reserve(*, key: str, rate: int, cost: int, max_wait: float) -> float | None:
    """Reserve `cost` segments of the bucket `key` (`rate` segments a second).

    Returns how many seconds from now the first of them is due (each next one 1 / rate later),
    or None, reserving nothing, when that is more than `max_wait` seconds away.
    """
    interval_us = round(1_000_000 / rate)
    wait_us = _schedule(settings.RATE_LIMIT_STORAGE_URL).reserve(
        key, interval_us, cost, round(max_wait * 1_000_000)
    )
    return None if wait_us < 0 else wait_us / 1_000_000


def rate_limit_acquire(*, key: str, rate: int, cost: int, max_wait: float) -> bool:
    """Reserve `cost` segments and wait until they are due; False (no wait) if not within
    `max_wait` seconds."""
    wait = rate_limit_reserve(key=key, rate=rate, cost=cost, max_wait=max_wait)
    if wait is None:
        return False
    if wait > 0:
        time.sleep(wait)
    return True


def rate_limit_reset(*, key: str) -> None:
    """Forget a bucket's schedule (tests and benchmarks start from an idle bucket)."""
    _schedule(settings.RATE_LIMIT_STORAGE_URL).clear(key)
