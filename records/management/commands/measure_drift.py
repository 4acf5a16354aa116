"""`measure_drift [--days N]`: measure each production model version's drift now."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from records.services import drift_measure
from risk.selectors import drift_level


class Command(BaseCommand):
    help = (
        "Compare each production model version's last window of predictions with its training "
        "data (PSI per feature and for the score) and store the measurements."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days", type=int, default=None, help="Window length (default: the setting, 7)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["days"] is not None and options["days"] < 1:
            raise CommandError("--days must be at least 1.")
        outcomes = drift_measure(window_days=options["days"])
        if not outcomes:
            self.stdout.write("No production model version to measure.")
        for outcome in outcomes:
            name = f"{outcome.model_id} v{outcome.model_version}"
            if outcome.skipped:
                self.stdout.write(f"{name}: not measured ({outcome.skipped}).")
                continue
            worst = max(outcome.measurements, key=lambda row: row.psi)
            self.stdout.write(
                self.style.SUCCESS(
                    f"{name}: {len(outcome.measurements)} measurements over "
                    f"{outcome.sample_size} predictions; worst {worst.feature} "
                    f"PSI {worst.psi:.3f} ({drift_level(worst.psi)})."
                )
            )
