"""Celery beat's scheduler with a heartbeat, so a health check can tell beat is still ticking.

Beat answers no ping (`celery inspect ping` reaches workers only) and a process that is alive
may have stopped scheduling; this touches CELERY_BEAT_HEARTBEAT_FILE at most every few seconds
from the scheduler's own loop, and `scripts/beat_healthcheck.py` checks its age.
"""

import time
from pathlib import Path
from typing import Any

from celery.beat import PersistentScheduler
from django.conf import settings

HEARTBEAT_EVERY_SECONDS = 5.0


class HeartbeatScheduler(PersistentScheduler):
    _last_beat = 0.0

    def tick(self, *args: Any, **kwargs: Any) -> float:
        interval = super().tick(*args, **kwargs)
        now = time.monotonic()
        if now - self._last_beat >= HEARTBEAT_EVERY_SECONDS:
            Path(settings.CELERY_BEAT_HEARTBEAT_FILE).touch()
            self._last_beat = now
        return interval
