"""Writes of the decisions app, one module per concern; callers use `decisions.services.<name>`.

Every write is one transaction and writes its audit entry inside it.
"""

from decisions.services.approvals import (
    OPEN_STATUSES as APPROVAL_OPEN_STATUSES,
)
from decisions.services.approvals import (
    approval_required_for,
    rule_version_approval_request,
    rule_version_approve,
    rule_version_reject,
)
from decisions.services.backtests import MAX_CANDIDATES, backtest_create, backtest_run
from decisions.services.events import (
    MAX_PAYLOAD_KEYS,
    MAX_PAYLOAD_LIST_ITEMS,
    MAX_PAYLOAD_VALUES,
    decision_actions_dispatch,
    event_register,
    event_risk_score,
)
from decisions.services.lists import MAX_LIST_VALUES, named_list_save, named_list_validate
from decisions.services.policies import policy_save, policy_validate
from decisions.services.retention import event_payloads_purge
from decisions.services.reviews import review_case_claim, review_case_open, review_case_resolve
from decisions.services.rules import (
    ACTION_TYPES,
    MAX_ACTION_TEMPLATE,
    MAX_ACTIONS,
    rule_actions_validate,
    rule_create,
    rule_update,
    rule_version_canary,
    rule_version_create,
    rule_version_publish,
    rule_version_retire,
    rule_version_rollback,
    rule_version_shadow,
    rule_versions_activate_due,
)
from decisions.services.shared import Actor
from decisions.services.velocity import velocity_aggregate_delete, velocity_aggregate_save
from decisions.services.webhooks import (
    webhook_delivery_attempt,
    webhook_endpoint_create,
    webhook_endpoint_secret_rotate,
    webhook_endpoint_update,
    webhook_url_validate,
)

__all__ = [
    "ACTION_TYPES",
    "APPROVAL_OPEN_STATUSES",
    "MAX_ACTIONS",
    "MAX_ACTION_TEMPLATE",
    "MAX_CANDIDATES",
    "MAX_LIST_VALUES",
    "MAX_PAYLOAD_KEYS",
    "MAX_PAYLOAD_LIST_ITEMS",
    "MAX_PAYLOAD_VALUES",
    "Actor",
    "approval_required_for",
    "backtest_create",
    "backtest_run",
    "decision_actions_dispatch",
    "event_payloads_purge",
    "event_register",
    "event_risk_score",
    "named_list_save",
    "named_list_validate",
    "policy_save",
    "policy_validate",
    "review_case_claim",
    "review_case_open",
    "review_case_resolve",
    "rule_actions_validate",
    "rule_create",
    "rule_update",
    "rule_version_approval_request",
    "rule_version_approve",
    "rule_version_canary",
    "rule_version_create",
    "rule_version_publish",
    "rule_version_reject",
    "rule_version_retire",
    "rule_version_rollback",
    "rule_version_shadow",
    "rule_versions_activate_due",
    "velocity_aggregate_delete",
    "velocity_aggregate_save",
    "webhook_delivery_attempt",
    "webhook_endpoint_create",
    "webhook_endpoint_secret_rotate",
    "webhook_endpoint_update",
    "webhook_url_validate",
]
