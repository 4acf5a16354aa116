from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from celery.signals import before_task_publish

        from core import (
            schema,  # noqa: F401  (registers the OpenAPI auth extension)
            telemetry,
        )
        from core.roles import roles_ensure

        post_migrate.connect(roles_ensure, sender=self, dispatch_uid="core-roles-ensure")
        before_task_publish.connect(
            telemetry.stamp_published_at, weak=False, dispatch_uid="core-task-published-at"
        )
