"""The review queue: cases by age or risk, their stats for the metrics, and what a case page
shows beside the decision (the customer's earlier decisions, the risk record, webhooks)."""

from typing import Any

from django.conf import settings
from django.db.models import Count, F, Min, QuerySet
from django.utils import timezone

from core import telemetry
from core.errors import DomainError
from decisions.exceptions import (
    ReviewCaseNotFound,
)
from decisions.models import (
    Decision,
    ReviewCase,
    WebhookDelivery,
)
from records import selectors as records_selectors

# --- Review queue ------------------------------------------------------------------------------

# How the queue may be ordered: oldest first (ties: riskiest), or riskiest first (ties: oldest).
REVIEW_ORDERINGS: dict[str, tuple[Any, ...]] = {
    "age": ("opened_at", F("risk_score").desc(nulls_last=True), "id"),
    "risk": (F("risk_score").desc(nulls_last=True), "opened_at", "id"),
}


def review_case_list(*, status: str | None = "open", ordering: str = "age") -> QuerySet[ReviewCase]:
    """The queue (open cases by default), each with its decision, event and deciding rule."""
    cases = ReviewCase.objects.select_related("decision__event", "decision__matched_version__rule")
    if status:
        cases = cases.filter(status=status)
    return cases.order_by(*REVIEW_ORDERINGS.get(ordering, REVIEW_ORDERINGS["age"]))


def review_case_get(*, case_id: int) -> ReviewCase:
    case = review_case_list(status=None).filter(pk=case_id).first()
    if case is None:
        raise ReviewCaseNotFound(f"No review case {case_id}.")
    return case


def review_queue_stats() -> tuple[int, float]:
    """(open cases, age in seconds of the oldest one; 0 when the queue is empty), for metrics."""
    stats = ReviewCase.objects.filter(status=ReviewCase.Status.OPEN).aggregate(
        size=Count("id"), oldest=Min("opened_at")
    )
    if not stats["oldest"]:
        return 0, 0.0
    return stats["size"], max(0.0, (timezone.now() - stats["oldest"]).total_seconds())


def review_queue_reading() -> telemetry.ReviewQueueReading:
    """The review queue as the Prometheus gauges read it at each scrape."""
    size, oldest = review_queue_stats()
    return telemetry.ReviewQueueReading(size=size, oldest_age_seconds=oldest)


def customer_earlier_decisions(*, decision: Decision, limit: int = 20) -> list[Decision]:
    """The decisions of the same customer's earlier events of the same type, newest first.

    The customer is the payload field DECISIONS_CUSTOMER_FIELD names (e.g. `customer_id`); an
    event without it has no history to show.
    """
    field = settings.DECISIONS_CUSTOMER_FIELD
    customer = (decision.event.payload or {}).get(field)
    if customer is None or isinstance(customer, (dict, list)):
        return []
    return list(
        Decision.objects.select_related("event", "matched_version__rule", "review_case")
        .filter(
            event__type=decision.event_type,
            event__payload__contains={field: customer},
            event__received_at__lt=decision.event.received_at,
        )
        .order_by("-decided_at", "-id")[:limit]
    )


def decision_risk_record(*, decision: Decision) -> Any:
    """The prediction record behind the decision's score (with its drivers), if any."""
    if decision.risk_record_id is None:
        return None
    try:
        return records_selectors.record_get(record_id=decision.risk_record_id)
    except DomainError:
        return None  # deleted by retention: the score stays on the decision


def decision_webhooks(*, decision: Decision) -> list[WebhookDelivery]:
    """The webhook deliveries of the decision's actions, each with its attempts."""
    return list(
        WebhookDelivery.objects.filter(decision=decision)
        .select_related("endpoint")
        .prefetch_related("tries")
        .order_by("action_index")
    )
