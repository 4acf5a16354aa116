"""`register_model KEY --artifact model.skops --schema schema.json`: bring your own model."""

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import DomainError
from risk.services import model_version_register

MAX_ARTIFACT_BYTES = 50 * 1024 * 1024
MAX_SCHEMA_BYTES = 1024 * 1024


class Command(BaseCommand):
    help = (
        "Register a scikit-learn Pipeline (ColumnTransformer + binary linear classifier) saved "
        'with skops. The schema file is JSON: {"features": [...], "label_thresholds": '
        '[["low", 0.3], ["medium", 0.6], ["high", null]], optional "metrics", '
        '"baseline", "name", "description"}.'
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("model", help="The model key (a slug), e.g. churn-risk.")
        parser.add_argument("--artifact", type=Path, required=True, help="The .skops file.")
        parser.add_argument("--schema", type=Path, required=True, help="The JSON schema file.")
        parser.add_argument("--promote", action="store_true", help="Make it production.")

    def handle(self, *args: Any, **options: Any) -> None:
        artifact_path = Path(options["artifact"])
        schema_path = Path(options["schema"])
        for path, limit in ((artifact_path, MAX_ARTIFACT_BYTES), (schema_path, MAX_SCHEMA_BYTES)):
            if not path.is_file():
                raise CommandError(f"{path} is not a file.")
            if path.stat().st_size > limit:
                raise CommandError(f"{path} is larger than {limit} bytes.")
        try:
            spec = json.loads(schema_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise CommandError(f"{schema_path} is not valid JSON: {error}") from None
        if not isinstance(spec, dict):
            raise CommandError(f"{schema_path} must hold a JSON object.")
        try:
            model_version = model_version_register(
                key=options["model"],
                artifact=artifact_path.read_bytes(),
                feature_schema=spec.get("features"),
                label_thresholds=spec.get("label_thresholds"),
                metrics=spec.get("metrics") or {},
                baseline=spec.get("baseline"),
                name=str(spec.get("name") or ""),
                description=str(spec.get("description") or ""),
                dataset_fingerprint=str(spec.get("dataset_fingerprint") or "")[:64],
                promote=options["promote"],
            )
        except DomainError as error:
            details = "; ".join(
                f"{field}: {', '.join(messages)}" for field, messages in error.errors.items()
            )
            raise CommandError(f"{error.detail}{' (' + details + ')' if details else ''}") from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Registered {options['model']} v{model_version.version} ({model_version.stage}), "
                f"{model_version.embedding_source_dimensions} encoded dimensions."
            )
        )
