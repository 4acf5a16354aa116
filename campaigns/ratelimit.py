"""The shared send-rate limit, counted in SMS segments, stored where every worker sees it.

`limits` ships no token bucket as such; its moving window is the strict equivalent we need: a
bucket of `rate` tokens in which each spent token comes back exactly one second after it was
spent, so no one-second span ever carries more than `rate` segments. The storage comes from
RATE_LIMIT_STORAGE_URL: Redis when configured (shared by every worker process), else memory
(shared only within one process; fine for development, not for several workers).
"""

import random
import time
from functools import lru_cache

from django.conf import settings
from limits import RateLimitItemPerSecond
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter


@lru_cache(maxsize=4)
def _limiter(storage_url: str) -> MovingWindowRateLimiter:
    storage = storage_from_string(storage_url)
    assert isinstance(storage, Storage)
    return MovingWindowRateLimiter(storage)


def rate_limit_acquire(*, key: str, rate: int, cost: int, max_wait: float) -> bool:
    """Take `cost` tokens from the bucket `key` (refilling at `rate` per second); wait if needed.

    Returns False when the tokens did not come within `max_wait` seconds, so the caller can
    hand the work back instead of holding a worker slot forever.
    """
    limiter = _limiter(settings.RATE_LIMIT_STORAGE_URL)
    item = RateLimitItemPerSecond(rate)
    cost = min(cost, rate)  # a message longer than the whole bucket still goes, at full cost
    deadline = time.monotonic() + max_wait
    while True:
        if limiter.hit(item, "sms", key, cost=cost):
            return True
        reset_at, _remaining = limiter.get_window_stats(item, "sms", key)
        now = time.monotonic()
        if now >= deadline:
            return False
        # Sleep until the oldest token returns, plus a little jitter so waiting workers do not
        # all retry in the same millisecond.
        pause = max(0.002, min(reset_at - time.time(), 0.1)) + random.uniform(0, 0.004)
        time.sleep(min(pause, max(deadline - now, 0.001)))


def rate_limit_reset(*, key: str, rate: int) -> None:
    """Forget a bucket (tests and benchmarks start from a full bucket)."""
    _limiter(settings.RATE_LIMIT_STORAGE_URL).clear(RateLimitItemPerSecond(rate), "sms", key)
