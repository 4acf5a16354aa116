"""Fixtures for the cross-app tests: a real Celery worker process, a trained credit model."""

from tests.support.celery_worker import celery_worker

__all__ = ["celery_worker"]
