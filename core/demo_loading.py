"""Whether `make run` is still loading its demo data, for the banner every page shows meanwhile.

A marker file under DATA_DIR: run_stack writes it before the web server starts and the
`load_demo_data` command removes it when done (or failed), so a page learns it with one stat(),
no query, in whichever process serves it.
"""

import hashlib
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest


def demo_loading_marker() -> Path:
    return settings.DATA_DIR / "demo-loading"


def demo_loading_mark() -> None:
    marker = demo_loading_marker()
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


def demo_loading_clear() -> None:
    demo_loading_marker().unlink(missing_ok=True)


def demo_loading_context(request: HttpRequest) -> dict[str, Any]:
    """Template context processor: `demo_loading` is true while the demo data is being loaded."""
    return {"demo_loading": not settings.PRODUCTION and demo_loading_marker().exists()}


def _demo_fingerprint() -> str:
    """The demo commands, and the database cluster they loaded into (a new cluster, or other
    commands, load again)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT system_identifier FROM pg_control_system()")
        (cluster,) = cursor.fetchone()
    commands = "\n".join(settings.DEMO_SETUP_COMMANDS)
    return hashlib.sha256(f"{cluster}\n{commands}".encode()).hexdigest()


def demo_loaded_marker() -> Path:
    return settings.DATA_DIR / "demo-loaded"


def demo_loaded_record() -> None:
    """After every demo command succeeded: a warm `make run` then starts no loader at all."""
    demo_loaded_marker().write_text(_demo_fingerprint())


def demo_is_loaded() -> bool:
    marker = demo_loaded_marker()
    return marker.exists() and marker.read_text() == _demo_fingerprint()
