#!/usr/bin/env python3
"""Exit 0 when Celery beat has ticked recently (its heartbeat file is fresh), else 1.

Standard library only, so the container's health check costs no Django start-up. The file is
CELERY_BEAT_HEARTBEAT_FILE, or celerybeat-heartbeat in DATA_DIR (as config/settings.py says).
"""

import os
import sys
import time
from pathlib import Path

MAX_AGE_SECONDS = float(os.environ.get("BEAT_HEARTBEAT_MAX_AGE_SECONDS", "60"))


def heartbeat_file() -> Path:
    if os.environ.get("CELERY_BEAT_HEARTBEAT_FILE"):
        return Path(os.environ["CELERY_BEAT_HEARTBEAT_FILE"])
    data_dir = os.environ.get("DATA_DIR") or str(Path(__file__).resolve().parent.parent / ".data")
    return Path(data_dir) / "celerybeat-heartbeat"


def main() -> int:
    path = heartbeat_file()
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        print(f"unhealthy: {path} does not exist (beat has not ticked yet)")
        return 1
    if age > MAX_AGE_SECONDS:
        print(f"unhealthy: beat last ticked {age:.0f} s ago")
        return 1
    print(f"ok: beat ticked {age:.1f} s ago")
    return 0


if __name__ == "__main__":
    sys.exit(main())
