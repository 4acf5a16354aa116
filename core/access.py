"""Who may do what: one vocabulary for machines (API-key and JWT scopes) and people (roles).

Every scope is also a Django permission (`core.<scope with _ for :>`), so an endpoint names one
scope and both kinds of caller are checked against it: a key by the scopes it carries, a person
by the permissions their roles (groups) grant. A few permissions exist only for people.
"""

from collections.abc import Iterable
from enum import StrEnum


class Scope(StrEnum):
    EVENTS_WRITE = "events:write"
    DECISIONS_READ = "decisions:read"
    RULES_READ = "rules:read"
    RULES_WRITE = "rules:write"
    BACKTESTS_WRITE = "backtests:write"
    MODELS_READ = "models:read"
    PREDICT = "predict"
    RECORDS_READ = "records:read"
    CONTACTS_READ = "contacts:read"
    CONTACTS_WRITE = "contacts:write"
    CAMPAIGNS_READ = "campaigns:read"
    CAMPAIGNS_WRITE = "campaigns:write"
    CAMPAIGNS_LAUNCH = "campaigns:launch"
    MESSAGES_READ = "messages:read"
    PII_READ = "pii:read"
    REVIEWS_READ = "reviews:read"
    REVIEWS_WRITE = "reviews:write"


class PeopleOnly(StrEnum):
    """Permissions no key can carry: they need a person who can be held to account."""

    RULES_APPROVE = "rules:approve"
    CONSENT_OVERRIDE = "consent:override"
    CONTACTS_ERASE = "contacts:erase"
    AUDIT_READ = "audit:read"
    KEYS_MANAGE = "keys:manage"
    WEBHOOKS_MANAGE = "webhooks:manage"


SCOPE_DESCRIPTIONS: dict[str, str] = {
    Scope.EVENTS_WRITE: "Submit events for decision",
    Scope.DECISIONS_READ: "Read decisions and their traces",
    Scope.RULES_READ: "Read rules, versions, lists and policies",
    Scope.RULES_WRITE: "Write rules, versions, lists and policies",
    Scope.BACKTESTS_WRITE: "Run backtests of rule drafts",
    Scope.MODELS_READ: "Read the model registry",
    Scope.PREDICT: "Score applicants",
    Scope.RECORDS_READ: "Read prediction records",
    Scope.CONTACTS_READ: "Read contacts",
    Scope.CONTACTS_WRITE: "Write contacts and their consent",
    Scope.CAMPAIGNS_READ: "Read campaigns",
    Scope.CAMPAIGNS_WRITE: "Create and edit campaigns",
    Scope.CAMPAIGNS_LAUNCH: "Launch, pause, resume and cancel campaigns",
    Scope.MESSAGES_READ: "Read messages",
    Scope.PII_READ: "See phone numbers, message bodies and features unmasked",
    Scope.REVIEWS_READ: "Read the review queue and its cases",
    Scope.REVIEWS_WRITE: "Claim and resolve review cases",
    PeopleOnly.RULES_APPROVE: "Approve a rule version for publication",
    PeopleOnly.CONSENT_OVERRIDE: "Reverse a contact's STOP, with a recorded reason",
    PeopleOnly.CONTACTS_ERASE: "Erase a contact's personal data",
    PeopleOnly.AUDIT_READ: "Read the audit trail",
    PeopleOnly.KEYS_MANAGE: "Create and revoke API keys",
    PeopleOnly.WEBHOOKS_MANAGE: "Register outbound webhook endpoints and their secrets",
}

ALL_SCOPES: frozenset[str] = frozenset(Scope)


def codename(permission: str) -> str:
    """`campaigns:launch` → `campaigns_launch`, the Django permission's codename in `core`."""
    return permission.replace(":", "_")


def permission_name(permission: str) -> str:
    """The dotted name `user.has_perm` takes."""
    return f"core.{codename(permission)}"


def scopes_parse(values: Iterable[str]) -> list[str]:
    """Validate scope names (`all` expands to every scope); unknown names raise ValueError."""
    wanted = {value.strip() for value in values if value.strip()}
    if "all" in wanted:
        return sorted(ALL_SCOPES)
    unknown = sorted(wanted - ALL_SCOPES)
    if unknown:
        raise ValueError(f"Unknown scope(s): {', '.join(unknown)}.")
    return sorted(wanted)


# The roles of DESIGN.md, as Django groups; a data migration creates them from this table.
ROLES: dict[str, frozenset[str]] = {
    "analyst": frozenset(
        {
            Scope.DECISIONS_READ,
            Scope.RULES_READ,
            Scope.MODELS_READ,
            Scope.PREDICT,
            Scope.RECORDS_READ,
            Scope.CAMPAIGNS_READ,
            Scope.REVIEWS_READ,
            Scope.REVIEWS_WRITE,
        }
    ),
    "rule editor": frozenset(
        {
            Scope.DECISIONS_READ,
            Scope.RULES_READ,
            Scope.RULES_WRITE,
            Scope.BACKTESTS_WRITE,
            Scope.MODELS_READ,
        }
    ),
    "rule approver": frozenset({Scope.DECISIONS_READ, Scope.RULES_READ, PeopleOnly.RULES_APPROVE}),
    "campaign manager": frozenset(
        {
            Scope.CONTACTS_READ,
            Scope.CONTACTS_WRITE,
            Scope.CAMPAIGNS_READ,
            Scope.CAMPAIGNS_WRITE,
            Scope.CAMPAIGNS_LAUNCH,
            Scope.MESSAGES_READ,
        }
    ),
    "compliance": frozenset(
        {
            Scope.DECISIONS_READ,
            Scope.RECORDS_READ,
            Scope.CONTACTS_READ,
            Scope.CAMPAIGNS_READ,
            Scope.MESSAGES_READ,
            Scope.PII_READ,
            Scope.REVIEWS_READ,
            PeopleOnly.CONSENT_OVERRIDE,
            PeopleOnly.CONTACTS_ERASE,
            PeopleOnly.AUDIT_READ,
        }
    ),
    "admin": frozenset(SCOPE_DESCRIPTIONS),
}
