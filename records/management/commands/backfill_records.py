"""`backfill_records FILE.csv --model credit-default`: score a historical CSV into records."""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from core.errors import DomainError
from records.backfill import backfill_csv, csv_header_check, csv_row_count
from risk.selectors import model_version_get


class Command(BaseCommand):
    help = (
        "Score every row of a CSV (one column per feature, optional external_id) and store the "
        "predictions as back-filled records. Idempotent and resumable; bad rows go to a report."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="The CSV file, with a header row.")
        parser.add_argument("--model", required=True, help="The model key, e.g. credit-default.")
        parser.add_argument(
            "--model-version", type=int, help="A model version (default: production)."
        )
        parser.add_argument("--batch-size", type=int, default=settings.RECORDS_BACKFILL_BATCH_SIZE)
        parser.add_argument(
            "--writers",
            type=int,
            default=settings.RECORDS_BACKFILL_WRITERS,
            help="Database connections writing batches at once (each batch commits on its own).",
        )
        parser.add_argument(
            "--report", type=Path, help="Rejected rows CSV (default: FILE.rejected.csv)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"{path} is not a file.")
        if not 1 <= options["batch_size"] <= 10_000:
            raise CommandError("--batch-size must be from 1 to 10000.")
        if not 1 <= options["writers"] <= 8:
            raise CommandError("--writers must be from 1 to 8.")
        try:
            model_version = model_version_get(
                key=options["model"], version=options["model_version"]
            )
            csv_header_check(path, model_version.feature_schema)
        except DomainError as error:
            details = "; ".join(
                f"{name}: {', '.join(items)}" for name, items in error.errors.items()
            )
            raise CommandError(f"{error.detail} {details}".strip()) from None
        report_path = Path(options["report"] or path.with_name(path.name + ".rejected.csv"))
        total = csv_row_count(path)
        self.stdout.write(
            f"Back-filling {total} rows of {path} with {model_version.model.key} "
            f"v{model_version.version}…"
        )
        with tqdm(total=total, unit="rows", file=self.stdout, mininterval=0.5) as bar:
            report = backfill_csv(
                path=path,
                model_id=options["model"],
                version=model_version.version,
                report_path=report_path,
                batch_size=options["batch_size"],
                writers=options["writers"],
                max_row_bytes=settings.RECORDS_BACKFILL_MAX_ROW_BYTES,
                progress=bar.update,
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Inserted {report.inserted}, skipped {report.skipped} already imported, "
                f"rejected {report.rejected}."
            )
        )
        if report.rejected:
            for line in report.first_rejections:
                self.stdout.write(f"  {line}")
            self.stdout.write(self.style.WARNING(f"Rejected rows are listed in {report_path}."))
