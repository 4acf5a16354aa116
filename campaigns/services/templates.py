"""SMS templates that rule actions send by key: created by anyone with campaigns:write,
usable only once a campaign manager (a person with campaigns:launch) approved them.

Approval is a person's act, never a key's: the point is that a human who answers for what the
company sends has read the text. An approved text is frozen; a new text is a new key.
"""

import re

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns.config import MAX_TEMPLATE_LENGTH, compile_template, template_cost_check
from campaigns.exceptions import (
    ApprovalForbidden,
    SmsTemplateConflict,
    SmsTemplateNotFound,
    TemplateRenderError,
)
from campaigns.models import SmsTemplate
from core.access import Scope
from core.audit import Actor, actor_label_for, audit_record
from core.errors import InvalidInput
from core.permissions import principal_may

KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# What a rule action's template reads (decisions' dispatch passes the same names).
SAMPLE_DECISION_CONTEXT = {
    "event": {},
    "event_type": "loan_application",
    "outcome": "review",
    "risk": {"score": 0.5, "label": "medium"},
    "phone": "+14155550123",
}


def sms_template_body_validate(body: object, *, field: str = "body") -> str:
    """Syntax, length and cost of a template text; errors name `field`."""
    if not isinstance(body, str) or not body.strip():
        raise InvalidInput("A template text is required.", errors={field: ["Required."]})
    if len(body) > MAX_TEMPLATE_LENGTH:
        raise InvalidInput(
            f"At most {MAX_TEMPLATE_LENGTH} characters.",
            errors={field: [f"At most {MAX_TEMPLATE_LENGTH} characters."]},
        )
    try:
        compile_template(body)
        template_cost_check(body, SAMPLE_DECISION_CONTEXT)
    except TemplateRenderError as error:
        raise type(error)(error.detail, errors={field: [error.detail]}) from None
    return body


def _snapshot(template: SmsTemplate) -> dict[str, object]:
    return {
        "key": template.key,
        "body": template.body,
        "description": template.description,
        "approved_by": template.approved_by_label,
        "approved_at": template.approved_at.isoformat() if template.approved_at else None,
    }


@transaction.atomic
def sms_template_create(
    *, key: str, body: str, description: str = "", actor: Actor = None
) -> SmsTemplate:
    """A new, not yet approved template (rule actions cannot send it until approved)."""
    key = (key or "").strip()
    if not KEY_PATTERN.match(key):
        raise InvalidInput(
            "The key is lower-case letters, digits, '-' or '_' (at most 64).",
            errors={"key": ["Lower-case letters, digits, '-' or '_', at most 64."]},
        )
    body = sms_template_body_validate(body)
    description = (description or "").strip()
    if len(description) > 200:
        raise InvalidInput("At most 200 characters.", errors={"description": ["Too long."]})
    template = SmsTemplate(
        key=key, body=body, description=description, created_by=actor_label_for(actor)
    )
    try:
        with transaction.atomic():
            template.save()
    except IntegrityError:
        raise SmsTemplateConflict(
            f"A template with key {key} exists.", errors={"key": ["Taken."]}
        ) from None
    audit_record(
        actor=actor,
        action="sms_template.create",
        target_type="sms_template",
        target_id=key,
        after=_snapshot(template),
    )
    return template


@transaction.atomic
def sms_template_update(
    *, template: SmsTemplate, body: str, description: str | None = None, actor: Actor = None
) -> SmsTemplate:
    """Change a template's text while it is not approved; an approved text is frozen."""
    template = SmsTemplate.objects.select_for_update().get(pk=template.pk)
    if template.approved:
        raise SmsTemplateConflict(
            f"{template.key} is approved and frozen; create a new template for a new text."
        )
    before = _snapshot(template)
    template.body = sms_template_body_validate(body)
    if description is not None:
        template.description = description.strip()[:200]
    template.save(update_fields=["body", "description"])
    audit_record(
        actor=actor,
        action="sms_template.update",
        target_type="sms_template",
        target_id=template.key,
        before=before,
        after=_snapshot(template),
    )
    return template


@transaction.atomic
def sms_template_approve(*, template: SmsTemplate, actor: Actor) -> SmsTemplate:
    """Approve a template so rule actions may send it; only a person with campaigns:launch."""
    if not isinstance(actor, User) or not principal_may(actor, Scope.CAMPAIGNS_LAUNCH):
        raise ApprovalForbidden(
            "Only a person with campaigns:launch (a campaign manager) may approve a template."
        )
    template = SmsTemplate.objects.select_for_update().get(pk=template.pk)
    if template.approved:
        return template  # approving twice changes nothing
    template.approved_by = actor
    template.approved_by_label = actor_label_for(actor)
    template.approved_at = timezone.now()
    template.save(update_fields=["approved_by", "approved_by_label", "approved_at"])
    audit_record(
        actor=actor,
        action="sms_template.approve",
        target_type="sms_template",
        target_id=template.key,
        after=_snapshot(template),
    )
    return template


def sms_template_get(*, key: str) -> SmsTemplate | None:
    """A template by key, approved or not (a read, next to the writes that need it)."""
    return SmsTemplate.objects.filter(key=key).first()


def sms_template_for_sending(*, key: str) -> SmsTemplate:
    """The approved template with this key, or SmsTemplateNotFound (a read, for senders)."""
    template = SmsTemplate.objects.filter(key=key, approved_at__isnull=False).first()
    if template is None:
        raise SmsTemplateNotFound(
            f"No approved SMS template {key!r}.", errors={"template": ["Not an approved key."]}
        )
    return template
