"""Four-eyes publishing: where an event type's policy asks for it, a rule version goes live only
after a person other than its author approved it (requested → approved / rejected, audited)."""

from typing import Any

from django.db import transaction
from django.utils import timezone

from core.access import PeopleOnly
from core.audit import actor_label_for, actor_user_for, audit_record
from core.permissions import principal_may
from decisions.exceptions import ApprovalForbidden, ApprovalRequired, ApprovalStateConflict
from decisions.models import Policy, RuleVersion, RuleVersionApproval
from decisions.services.shared import Actor, version_locked

# A version may be put forward, approved or rejected only while it can still be published.
OPEN_STATUSES = (RuleVersion.Status.DRAFT, RuleVersion.Status.SHADOW)


def approval_required_for(*, event_type: str) -> bool:
    """Whether the event type's policy asks for four-eyes publishing."""
    return Policy.objects.filter(event_type=event_type, requires_approval=True).exists()


def version_is_approved(version: RuleVersion) -> bool:
    return version.approvals.filter(status=RuleVersionApproval.Status.APPROVED).exists()


def approval_check_before_publish(version: RuleVersion) -> None:
    """Refuse (409) to publish an unapproved version of an event type that needs approval."""
    if approval_required_for(event_type=version.rule.event_type) and not version_is_approved(
        version
    ):
        raise ApprovalRequired(
            f"The {version.rule.event_type} policy needs an approval by someone other than the "
            f"author before version {version.number} of {version.rule.key} can be published; "
            "request one and let a rule approver approve it.",
            errors={"approval": ["Not approved."]},
        )


def _approval_snapshot(approval: RuleVersionApproval) -> dict[str, Any]:
    return {
        "status": approval.status,
        "requested_by": approval.requested_by_label,
        "request_note": approval.request_note,
        "decided_by": approval.decided_by_label,
        "decision_note": approval.decision_note,
    }


def _audit(
    action: str,
    version: RuleVersion,
    approval: RuleVersionApproval,
    *,
    actor: Actor,
    before: dict[str, Any] | None = None,
) -> None:
    audit_record(
        actor=actor,
        action=f"rule_version.{action}",
        target_type="rule_version",
        target_id=f"{version.rule.key}:{version.number}",
        before=before,
        after=_approval_snapshot(approval),
    )


def _lock_open_version(version: RuleVersion) -> RuleVersion:
    locked = version_locked(version)
    if locked.status not in OPEN_STATUSES:
        raise ApprovalStateConflict(
            f"Version {locked.number} of {locked.rule.key} is {locked.status}; only draft or "
            "shadow versions can be approved for publication.",
            errors={"status": [f"Is {locked.status}."]},
        )
    return locked


@transaction.atomic
def rule_version_approval_request(
    *, version: RuleVersion, actor: Actor = None, note: str = ""
) -> RuleVersionApproval:
    """Put a draft or shadow version forward for approval (one open request at a time)."""
    version = _lock_open_version(version)
    if version.approvals.filter(
        status__in=[RuleVersionApproval.Status.REQUESTED, RuleVersionApproval.Status.APPROVED]
    ).exists():
        raise ApprovalStateConflict(
            f"Version {version.number} of {version.rule.key} already has an open or granted "
            "approval.",
            errors={"approval": ["Already requested or approved."]},
        )
    approval = RuleVersionApproval.objects.create(
        version=version,
        requested_by=actor_user_for(actor),
        requested_by_label=actor_label_for(actor),
        request_note=(note or "").strip()[:2000],
        requested_at=timezone.now(),
    )
    _audit("approval_request", version, approval, actor=actor)
    return approval


def _decide(
    *, version: RuleVersion, actor: Actor, note: str, status: RuleVersionApproval.Status
) -> RuleVersionApproval:
    user = actor_user_for(actor)
    if user is None or not principal_may(user, PeopleOnly.RULES_APPROVE):
        raise ApprovalForbidden(
            "Approving or rejecting a rule version needs a person with the rules:approve "
            "permission (the rule approver role)."
        )
    version = _lock_open_version(version)
    if version.author_id is not None and version.author_id == user.pk:
        raise ApprovalForbidden(
            f"You wrote version {version.number} of {version.rule.key}; someone else must "
            "approve or reject it."
        )
    approval = (
        version.approvals.select_for_update()
        .filter(status=RuleVersionApproval.Status.REQUESTED)
        .first()
    )
    if approval is None:
        raise ApprovalStateConflict(
            f"Version {version.number} of {version.rule.key} has no open approval request.",
            errors={"approval": ["Not requested."]},
        )
    before = _approval_snapshot(approval)
    approval.status = status
    approval.decided_by = user
    approval.decided_by_label = actor_label_for(actor)
    approval.decision_note = (note or "").strip()[:2000]
    approval.decided_at = timezone.now()
    approval.save(
        update_fields=["status", "decided_by", "decided_by_label", "decision_note", "decided_at"]
    )
    verb = "approve" if status == RuleVersionApproval.Status.APPROVED else "reject"
    _audit(verb, version, approval, actor=actor, before=before)
    return approval


@transaction.atomic
def rule_version_approve(
    *, version: RuleVersion, actor: Actor = None, note: str = ""
) -> RuleVersionApproval:
    """A rule approver other than the author approves the open request."""
    return _decide(
        version=version, actor=actor, note=note, status=RuleVersionApproval.Status.APPROVED
    )


@transaction.atomic
def rule_version_reject(
    *, version: RuleVersion, actor: Actor = None, note: str = ""
) -> RuleVersionApproval:
    """A rule approver other than the author rejects the open request (a new one may follow)."""
    return _decide(
        version=version, actor=actor, note=note, status=RuleVersionApproval.Status.REJECTED
    )
