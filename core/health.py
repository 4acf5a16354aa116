"""/healthz: the database, the broker and the cache, answering 200 or 503 naming what failed."""

import dataclasses
import datetime

from django.conf import settings
from django.core.cache import cache
from django.http import JsonResponse
from health_check.base import HealthCheck
from health_check.checks import Database
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView
from kombu import Connection


@dataclasses.dataclass
class Broker(HealthCheck):
    """The Celery broker accepts a connection (filesystem folder, Redis or AMQP)."""

    timeout = datetime.timedelta(seconds=3)

    def run(self) -> None:
        try:
            with Connection(
                settings.CELERY_BROKER_URL,
                transport=settings.CELERY_BROKER_TRANSPORT,
                transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
                connect_timeout=2,
            ) as connection:
                connection.ensure_connection(max_retries=1)
        except Exception as error:
            raise ServiceUnavailable("broker unreachable") from error


@dataclasses.dataclass
class Cache(HealthCheck):
    """The cache stores and returns a value."""

    def run(self) -> None:
        try:
            cache.set("healthz-probe", "ok", 10)
            if cache.get("healthz-probe") != "ok":
                raise ServiceUnavailable("cache returned a different value")
        except ServiceUnavailable:
            raise
        except Exception as error:
            raise ServiceUnavailable("cache unreachable") from error


CHECK_NAMES = {Database: "database", Broker: "broker", Cache: "cache"}


class HealthzView(HealthCheckView):
    """JSON: {"status": "ok" | "unavailable", "checks": {"database": "ok" | "<error>", ...}}."""

    checks = (Database, Broker, Cache)

    async def get(self, request, *args, **kwargs):
        await super().get(request, *args, **kwargs)
        results = {
            CHECK_NAMES.get(type(result.check), type(result.check).__name__): (
                "ok" if result.error is None else str(result.error)
            )
            for result in self.results
        }
        failing = sorted(name for name, state in results.items() if state != "ok")
        body = {"status": "unavailable" if failing else "ok", "failing": failing, "checks": results}
        return JsonResponse(body, status=503 if failing else 200)
