"""Celery tasks of the records app: thin wrappers over services."""

from celery import shared_task

from records import services


@shared_task(name="records.drift_measure", ignore_result=True, soft_time_limit=600, time_limit=660)
def drift_measure_task() -> int:
    """Daily (beat): measure each production model version's drift; answers the rows stored."""
    return sum(len(outcome.measurements) for outcome in services.drift_measure())
