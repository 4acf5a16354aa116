"""Factories for the campaigns tests: real rows through the real services."""

from itertools import count
from typing import Any

from django.contrib.auth.models import Group, Permission, User

from campaigns import services
from campaigns.models import Campaign, Contact, SmsTemplate
from core.access import ROLES, codename

_numbers = count(1000)
OPEN_WINDOW = {"start": "00:00", "end": "23:59"}


def contact_factory(
    *,
    phone: str | None = None,
    attributes: dict[str, Any] | None = None,
    consent: dict[str, bool] | None = None,
    time_zone: str = "UTC",
) -> Contact:
    return services.contact_create(
        phone=phone or f"+1415555{next(_numbers) % 10000:04d}",
        attributes={"first_name": "Ada", "plan": "gold"} if attributes is None else attributes,
        consent={"marketing": True} if consent is None else consent,
        time_zone=time_zone,
    )


def contact_stopped_factory(*, phone: str) -> Contact:
    """A contact who texted STOP: opted out of everything."""
    contact = contact_factory(phone=phone)
    services.consent_change(contact=contact, topic="*", action="opt_out", source="sms_keyword")
    return contact


def campaign_config(**overrides: Any) -> dict[str, Any]:
    return {
        "segment": "contact.attributes.plan == 'gold'",
        "template": "Hi {{ contact.attributes.first_name }}, your gold offer is waiting.",
        "topic": "marketing",
        "send_window": OPEN_WINDOW,
        "rate_per_second": 10,
        **overrides,
    }


def campaign_factory(*, name: str = "Gold offer", **overrides: Any) -> Campaign:
    return services.campaign_create(name=name, config=campaign_config(**overrides))


def role_member(username: str, role: str) -> User:
    """A person in one of the roles of core.access (the group is made again if a transactional
    test's flush removed what the data migration created)."""
    group, _ = Group.objects.get_or_create(name=role)
    group.permissions.set(
        Permission.objects.filter(
            content_type__app_label="core", codename__in=[codename(p) for p in ROLES[role]]
        )
    )
    user, _ = User.objects.get_or_create(username=username)
    user.groups.add(group)
    return User.objects.get(pk=user.pk)  # a fresh object: permissions are cached per instance


def campaign_manager(username: str = "campaign-manager") -> User:
    """A person in the campaign manager role (campaigns:launch): who approves SMS templates."""
    return role_member(username, "campaign manager")


def approved_template(key: str = "call-us", body: str = "Call us.") -> SmsTemplate:
    """An SMS template a campaign manager approved, so rule actions may send it."""
    template = services.sms_template_get(key=key) or services.sms_template_create(
        key=key, body=body
    )
    return services.sms_template_approve(template=template, actor=campaign_manager())
