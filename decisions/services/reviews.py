"""The review queue: a `review` decision opens a case, one reviewer at a time claims it (the
claim expires), and it is resolved approve or decline with a note.

The resolution is stored on the case, beside the engine's outcome: the decision itself never
changes, so replay and backtests keep reproducing what the engine decided.
"""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.audit import actor_label_for, audit_record
from core.authentication import client_scope
from core.errors import InvalidInput
from core.rows import row_insert
from decisions.exceptions import ReviewCaseConflict, ReviewCaseNotFound
from decisions.models import Decision, ReviewCase
from decisions.services.shared import Actor

MAX_NOTE_LENGTH = 2000


def _case_snapshot(case: ReviewCase) -> dict[str, Any]:
    return {
        "decision": case.decision_id,
        "status": case.status,
        "claimed_by": case.claimed_by_label,
        "claimed_until": case.claimed_until.isoformat() if case.claimed_until else None,
        "resolution": case.resolution,
        "note": case.note,
    }


def review_case_open(*, decision: Decision) -> ReviewCase | None:
    """Open the case of a decision sent to review, i.e. with one of DECISIONS_REVIEW_OUTCOMES
    (None for any other outcome).

    Called inside event_register's transaction, so the case exists exactly when the decision
    does. Not audited: nobody changed anything, the engine decided.
    """
    if decision.outcome not in settings.DECISIONS_REVIEW_OUTCOMES:
        return None
    case = ReviewCase(
        decision=decision, opened_at=decision.decided_at, risk_score=decision.risk_score
    )
    row_insert(case)  # the per-event path: a statement built once, as for the decision
    return case


def _case_locked(case_id: int) -> ReviewCase:
    # Claims and resolutions of one case serialise on its row: of two reviewers claiming at
    # once, the second reads the first one's committed claim and is refused.
    case = ReviewCase.objects.select_for_update().filter(pk=case_id).first()
    if case is None:
        raise ReviewCaseNotFound(f"No review case {case_id}.")
    if case.status != ReviewCase.Status.OPEN:
        raise ReviewCaseConflict(
            f"Review case {case_id} was resolved already ({case.resolution}).",
            errors={"status": ["Resolved."]},
        )
    return case


def _held_by_another(case: ReviewCase, *, claimant: str, now: Any) -> bool:
    return bool(
        case.claimed_by
        and case.claimed_by != claimant
        and case.claimed_until is not None
        and case.claimed_until > now
    )


def _refuse_held(case: ReviewCase) -> ReviewCaseConflict:
    until = case.claimed_until.isoformat() if case.claimed_until else "?"
    return ReviewCaseConflict(
        f"Review case {case.pk} is claimed by {case.claimed_by_label} until {until}.",
        errors={"claimed_by": [f"Claimed by {case.claimed_by_label}."]},
    )


@transaction.atomic
def review_case_claim(*, case_id: int, actor: Actor) -> ReviewCase:
    """Take (or extend) the claim on an open case for DECISIONS_REVIEW_CLAIM_MINUTES.

    Refused (409) while another reviewer's claim runs; an expired claim is anyone's.
    """
    now = timezone.now()
    claimant = client_scope(actor)
    case = _case_locked(case_id)
    if _held_by_another(case, claimant=claimant, now=now):
        raise _refuse_held(case)
    before = _case_snapshot(case)
    case.claimed_by = claimant
    case.claimed_by_label = actor_label_for(actor)
    case.claimed_until = now + timedelta(minutes=settings.DECISIONS_REVIEW_CLAIM_MINUTES)
    case.save(update_fields=["claimed_by", "claimed_by_label", "claimed_until"])
    audit_record(
        actor=actor,
        action="review_case.claim",
        target_type="review_case",
        target_id=case.pk,
        before=before,
        after=_case_snapshot(case),
    )
    return case


@transaction.atomic
def review_case_resolve(*, case_id: int, resolution: str, note: str, actor: Actor) -> ReviewCase:
    """Resolve an open case approve or decline, with a note; the caller must not be kept out by
    another's running claim (an unclaimed case is claimed and resolved in one step)."""
    if resolution not in ReviewCase.Resolution.values:
        raise InvalidInput(
            "resolution must be approve or decline.",
            errors={"resolution": ["One of: approve, decline."]},
        )
    note = (note or "").strip()
    if not note or len(note) > MAX_NOTE_LENGTH:
        raise InvalidInput(
            f"A resolution needs a note of 1 to {MAX_NOTE_LENGTH} characters.",
            errors={"note": [f"1 to {MAX_NOTE_LENGTH} characters."]},
        )
    now = timezone.now()
    claimant = client_scope(actor)
    case = _case_locked(case_id)
    if _held_by_another(case, claimant=claimant, now=now):
        raise _refuse_held(case)
    before = _case_snapshot(case)
    case.status = ReviewCase.Status.RESOLVED
    case.resolution = resolution
    case.note = note
    case.resolved_by_label = actor_label_for(actor)
    case.resolved_at = now
    case.claimed_by = claimant
    case.claimed_by_label = actor_label_for(actor)
    case.claimed_until = None
    case.save(
        update_fields=[
            "status",
            "resolution",
            "note",
            "resolved_by_label",
            "resolved_at",
            "claimed_by",
            "claimed_by_label",
            "claimed_until",
        ]
    )
    audit_record(
        actor=actor,
        action="review_case.resolve",
        target_type="review_case",
        target_id=case.pk,
        before=before,
        after=_case_snapshot(case),
    )
    return case
