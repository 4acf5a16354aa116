"""`train_model credit-default [--promote] [--if-missing]`: train and register the shipped model."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import DomainError
from risk.selectors import model_has_production_version
from risk.services import model_version_register_trained
from risk.training import credit_default_train

TRAINERS = {"credit-default": credit_default_train}


class Command(BaseCommand):
    help = "Train a shipped model on its bundled data set and register it as a new version."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("model", choices=sorted(TRAINERS), help="The model key to train.")
        parser.add_argument(
            "--promote", action="store_true", help="Make the new version production."
        )
        parser.add_argument(
            "--if-missing",
            action="store_true",
            help="Do nothing when the model already has a production version.",
        )
        parser.add_argument("--folds", type=int, default=5, help="Cross-validation folds (≥ 2).")

    def handle(self, *args: Any, **options: Any) -> None:
        key = options["model"]
        if options["folds"] < 2:
            raise CommandError("--folds must be at least 2.")
        if options["if_missing"] and model_has_production_version(key=key):
            self.stdout.write(f"{key} already has a production version; nothing to do.")
            return
        self.stdout.write(f"Training {key} with {options['folds']}-fold cross-validation…")
        trained = TRAINERS[key](folds=options["folds"], report=self.stdout.write)
        try:
            model_version = model_version_register_trained(
                key=key, trained=trained, promote=options["promote"]
            )
        except DomainError as error:
            raise CommandError(f"{error.detail} {error.errors or ''}".strip()) from None
        metrics = trained.metrics
        self.stdout.write(
            self.style.SUCCESS(
                f"Registered {key} v{model_version.version} ({model_version.stage}): "
                f"ROC AUC {metrics['roc_auc_mean']:.3f} ± {metrics['roc_auc_std']:.3f}, "
                f"Brier {metrics['brier_mean']:.3f} ± {metrics['brier_std']:.3f}"
            )
        )
