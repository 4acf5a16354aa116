"""Demo data loaders: the same commands as any other, but never against a production database."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class DemoCommand(BaseCommand):
    """A command that writes demo data (a demo admin, demo rules, contacts, records)."""

    def execute(self, *args: Any, **options: Any) -> str | None:
        if settings.PRODUCTION:
            raise CommandError(
                f"{type(self).__module__.rsplit('.', 1)[-1]} loads demo data and refuses to run "
                "with DJANGO_ENV=production."
            )
        return super().execute(*args, **options)
