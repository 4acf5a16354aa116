"""A broker of the test's own (a filesystem folder, or a given Redis URL) for settings and app.

    def test_it_publishes(private_broker):
        folder = private_broker("filesystem://")
        ...

Settings (what core.telemetry reads) and the Celery app (what publishes) both point at it;
both are restored after the test.
"""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def private_broker(settings: Any, tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    from config.celery import app

    saved = (app.conf.broker_url, app.conf.broker_transport, app.conf.broker_transport_options)

    def reset_pools() -> None:
        app._pool = None
        app.amqp._producer_pool = None

    def use(url: str) -> Path:
        folder = tmp_path / "broker-queue"
        options: dict[str, Any] = {}
        transport = None
        if url == "filesystem://":
            folder.mkdir(exist_ok=True)
            options = {"data_folder_in": str(folder), "data_folder_out": str(folder)}
            transport = "core.broker:AtomicFilesystemTransport"
        settings.CELERY_BROKER_URL = url
        settings.CELERY_BROKER_TRANSPORT_OPTIONS = options
        app.conf.broker_url, app.conf.broker_transport = url, transport
        app.conf.broker_transport_options = options
        reset_pools()
        return folder

    yield use
    app.conf.broker_url, app.conf.broker_transport, app.conf.broker_transport_options = saved
    reset_pools()
