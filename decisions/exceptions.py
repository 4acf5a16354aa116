"""Errors of the decisions app, mapped to HTTP statuses by core.problems."""

from core.errors import Conflict, DomainError, InvalidInput, NotFound


class RuleNotFound(NotFound):
    code = "rule_not_found"
    title = "Rule not found"


class RuleVersionNotFound(NotFound):
    code = "rule_version_not_found"
    title = "Rule version not found"


class DecisionNotFound(NotFound):
    code = "decision_not_found"
    title = "Decision not found"


class BacktestNotFound(NotFound):
    code = "backtest_not_found"
    title = "Backtest not found"


class RuleVersionStateConflict(Conflict):
    """The version's status does not allow the transition (e.g. publishing a retired version)."""

    code = "rule_version_state_conflict"
    title = "Rule version state conflict"


class DuplicateRule(Conflict):
    code = "rule_exists"
    title = "Rule already exists"


class DuplicateEvent(Conflict):
    code = "event_exists"
    title = "Event already registered"


class InvalidActions(InvalidInput):
    code = "invalid_actions"
    title = "Invalid rule actions"


class ApprovalForbidden(DomainError):
    """The actor may not answer this approval (no rules:approve, not a person, or the author)."""

    code = "approval_forbidden"
    status = 403
    title = "Approval not allowed"


class ApprovalRequired(Conflict):
    """The event type's policy needs an approval by another person before publishing."""

    code = "approval_required"
    title = "Approval required"


class ApprovalStateConflict(Conflict):
    code = "approval_state_conflict"
    title = "Approval state conflict"


class BacktestInProgress(Conflict):
    """One backtest per rule at a time: a second while one is queued or running is refused."""

    code = "backtest_in_progress"
    title = "Backtest in progress"


class ReplayUnavailable(Conflict):
    """The event's payload was blanked by retention, so its decision cannot be re-evaluated."""

    code = "replay_unavailable"
    title = "Replay unavailable"


class ReviewCaseNotFound(NotFound):
    code = "review_case_not_found"
    title = "Review case not found"


class ReviewCaseConflict(Conflict):
    """The case is resolved already, or another reviewer holds an unexpired claim on it."""

    code = "review_case_conflict"
    title = "Review case conflict"


class WebhookEndpointNotFound(NotFound):
    code = "webhook_endpoint_not_found"
    title = "Webhook endpoint not found"


class NamedListNotFound(NotFound):
    code = "named_list_not_found"
    title = "List not found"


class PolicyNotFound(NotFound):
    code = "policy_not_found"
    title = "Policy not found"
