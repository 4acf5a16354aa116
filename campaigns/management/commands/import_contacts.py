"""Import contacts from a CSV file, with a line-numbered report of rejected rows."""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from campaigns import services
from core.errors import DomainError


class Command(BaseCommand):
    help = (
        "Import contacts from CSV: a `phone` column, optional `time_zone` and `consent_<topic>` "
        "(yes/no) columns; every other column becomes an attribute."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)

    def handle(self, *args: Any, path: Path, **options: Any) -> None:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"Cannot read {path}: {error}") from None
        try:
            report = services.contacts_import(text=text)
        except DomainError as error:
            raise CommandError(error.detail) from None
        for rejected in report.rejected:
            self.stdout.write(f"line {rejected['line']}: {'; '.join(rejected['errors'])}")
        self.stdout.write(
            self.style.SUCCESS(
                f"{report.created} created, {report.updated} updated, "
                f"{len(report.rejected)} rejected."
            )
        )
