"""`load_demo_records`: a few hundred predictions from the shipped data set, when none exist."""

from typing import Any

from django.core.management.base import CommandParser
from tqdm import tqdm

from core.management.demo import DemoCommand
from records.models import PredictionRecord
from records.services import BackfillRow, records_backfill_batch
from risk.selectors import german_credit_applicants, model_has_production_version

MODEL_KEY = "credit-default"


class Command(DemoCommand):
    help = "Back-fill the first N German Credit applicants as records, unless records exist."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=200)

    def handle(self, *args: Any, **options: Any) -> None:
        if not model_has_production_version(key=MODEL_KEY):
            self.stdout.write(f"No production {MODEL_KEY} model; run train_model first.")
            return
        if PredictionRecord.objects.filter(model_id=MODEL_KEY).exists():
            self.stdout.write("Records exist already; nothing to do.")
            return
        rows = [
            BackfillRow(line=line, external_id=f"german-credit:{line}", features=features)
            for line, features in german_credit_applicants()
        ][: max(0, options["count"])]
        inserted = 0
        with tqdm(total=len(rows), unit="rows", file=self.stdout) as bar:
            for start in range(0, len(rows), 100):
                batch = rows[start : start + 100]
                inserted += records_backfill_batch(model_id=MODEL_KEY, rows=batch).inserted
                bar.update(len(batch))
        self.stdout.write(self.style.SUCCESS(f"Loaded {inserted} demo records."))
