from django.apps import AppConfig


class DecisionsConfig(AppConfig):
    name = "decisions"

    def ready(self) -> None:
        # Here, not at the top: the selectors import models, which exist once apps are ready.
        from core import telemetry
        from decisions.review_selectors import review_queue_reading

        telemetry.review_queue_reader_register(review_queue_reading)
