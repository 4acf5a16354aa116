from django.apps import AppConfig


class RecordsConfig(AppConfig):
    name = "records"

    def ready(self) -> None:
        # Here, not at the top: the selectors import models, which exist once apps are ready.
        from core import telemetry
        from records.selectors import drift_readings

        telemetry.model_drift_reader_register(drift_readings)
