"""Contacts and consent: who may be messaged, and the ledger that says why."""

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from campaigns.exceptions import ConsentOverrideRequired, ContactErased, InvalidPhone
from campaigns.models import ConsentEvent, Contact, Subscription
from campaigns.phones import candidate_zones, phone_normalize, phone_region, zone_is_known
from campaigns.pii import phone_hash
from campaigns.providers import BAD_NUMBER_CODES, UNSUBSCRIBED_CODE
from core.access import PeopleOnly
from core.audit import Actor, actor_label_for, audit_record
from core.errors import Conflict, InvalidInput
from core.json import json_for_database
from core.permissions import principal_may
from core.principals import ApiClient

REASON_MAX_CHARS = 500
OPT_OUT_KEPT = (
    "The contact opted out (STOP): only their own START, or a compliance officer giving a "
    "reason, may reverse it."
)


def _validate_time_zone(time_zone: str) -> str:
    if time_zone and not zone_is_known(time_zone):
        raise InvalidInput(
            f"Unknown time zone {time_zone!r}.", errors={"time_zone": ["An IANA zone name."]}
        )
    return time_zone


def _validate_attributes(attributes: Any) -> dict[str, Any]:
    if not isinstance(attributes, dict):
        raise InvalidInput("Attributes must be an object.", errors={"attributes": ["An object."]})
    if len(str(attributes)) > 10_000:
        raise InvalidInput(
            "Attributes are limited to 10,000 characters.", errors={"attributes": ["Too large."]}
        )
    return json_for_database(attributes, field="attributes")


def contact_validate(
    *, phone: str | None = None, attributes: Any = None, time_zone: str | None = None
) -> str:
    """Check a contact's input as contact_create (with a phone) or contact_update would.

    Returns the number in E.164 ("" without a phone); raises InvalidInput naming the field.
    Forms call it from `clean`, so a bad input is a form error, never a half-done save.
    """
    e164 = ""
    if phone is not None:
        e164 = phone_normalize(phone)
        if Contact.objects.filter(phone=e164).exists():
            raise Conflict(
                f"A contact with phone {e164} exists.", errors={"phone": ["Already exists."]}
            )
    if attributes is not None:
        _validate_attributes(attributes)
    if time_zone is not None:
        _validate_time_zone(time_zone)
    return e164


def contact_fields(phone: str, time_zone: str) -> dict[str, Any]:
    """The fields derived from a number in E.164 (region, candidate zones) and its override."""
    return {
        "region": phone_region(phone),
        "number_time_zones": ",".join(candidate_zones(phone)),
        "time_zone": _validate_time_zone(time_zone),
    }


@transaction.atomic
def contact_create(
    *,
    phone: str,
    attributes: dict[str, Any] | None = None,
    time_zone: str = "",
    consent: dict[str, bool] | None = None,
    source: str = ConsentEvent.Source.API,
    actor: Actor = None,
) -> Contact:
    """Create a contact from any form of a valid number; its opt-ins go into the ledger."""
    e164 = contact_validate(phone=phone, attributes=attributes or {}, time_zone=time_zone)
    contact = Contact(phone=e164, attributes=attributes or {}, **contact_fields(e164, time_zone))
    contact.full_clean()
    contact.save()
    for topic, opted_in in (consent or {}).items():
        consent_apply(
            contact=contact,
            topic=topic,
            action=ConsentEvent.Action.OPT_IN if opted_in else ConsentEvent.Action.OPT_OUT,
            source=source,
            evidence={"via": "contact_create"},
        )
    audit_record(
        actor=actor,
        action="contact.create",
        target_type="contact",
        target_id=contact.pk,
        # The trail is append-only: it names the number by its hash, so erasure can keep it.
        after={"phone_hash": phone_hash(e164)},
    )
    return contact


@transaction.atomic
def contact_update(
    *,
    contact: Contact,
    attributes: dict[str, Any] | None = None,
    time_zone: str | None = None,
    actor: Actor = None,
) -> Contact:
    """Replace a contact's attributes and/or time-zone override."""
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    if contact.erased_at is not None:
        raise ContactErased("An erased contact cannot be changed.")
    before = {"attributes": sorted(contact.attributes), "time_zone": contact.time_zone}
    if attributes is not None:
        contact.attributes = _validate_attributes(attributes)
    if time_zone is not None:
        contact.time_zone = _validate_time_zone(time_zone)
    contact.full_clean()
    contact.save(update_fields=["attributes", "time_zone", "updated_at"])
    audit_record(
        actor=actor,
        action="contact.update",
        target_type="contact",
        target_id=contact.pk,
        # Attribute names, not values: the trail cannot be edited, so it must never hold
        # personal data that an erasure would have to remove (phones go in as hashes too).
        before=before,
        after={"attributes": sorted(contact.attributes), "time_zone": contact.time_zone},
    )
    return contact


def consent_apply(
    *, contact: Contact, topic: str, action: str, source: str, evidence: dict[str, Any]
) -> bool:
    """Append to the ledger and update the current state; True when the state changed."""
    now = timezone.now()
    ConsentEvent.objects.create(
        contact=contact,
        topic=topic,
        action=action,
        source=source,
        evidence=evidence,
        phone_hash=_ledger_hash(contact),
        occurred_at=now,
    )
    opted_out = action == ConsentEvent.Action.OPT_OUT
    if topic == ConsentEvent.ALL_TOPICS:
        if contact.opted_out == opted_out:
            return False
        contact.opted_out = opted_out
        contact.save(update_fields=["opted_out", "updated_at"])
        return True
    status = Subscription.Status.OPTED_OUT if opted_out else Subscription.Status.OPTED_IN
    current = Subscription.objects.filter(contact=contact, topic=topic).first()
    if current is not None and current.status == status:
        return False
    Subscription.objects.update_or_create(
        contact=contact,
        topic=topic,
        defaults={"status": status, "source": source, "updated_at": now},
    )
    return True


def _ledger_hash(contact: Contact) -> str:
    """The number's hash; an erased contact keeps the one its ledger was written under."""
    if contact.erased_at is None:
        return phone_hash(contact.phone)
    return (
        ConsentEvent.objects.filter(contact=contact)
        .exclude(phone_hash="")
        .values_list("phone_hash", flat=True)
        .first()
        or ""
    )


def consent_override_check(*, actor: Actor, reason: str) -> str:
    """Who may lift a contact's opt-out here: a person with consent:override, giving a reason.

    (The contact's own START arrives by webhook and never comes this way.) Returns the reason.
    """
    person = not isinstance(actor, ApiClient) and getattr(actor, "is_authenticated", False)
    if not person or not principal_may(actor, PeopleOnly.CONSENT_OVERRIDE):
        raise ConsentOverrideRequired(OPT_OUT_KEPT)
    return reason_valid(reason, needed_for="Reversing an opt-out")


def reason_valid(reason: str, *, needed_for: str) -> str:
    """A compliance action's reason (kept in the ledger and the trail): given, and bounded."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(f"{needed_for} needs a reason.", errors={"reason": ["Say why."]})
    if len(reason) > REASON_MAX_CHARS:
        raise InvalidInput(
            "The reason is too long.",
            errors={"reason": [f"At most {REASON_MAX_CHARS} characters."]},
        )
    return reason


@transaction.atomic
def consent_change(
    *,
    contact: Contact,
    topic: str,
    action: str,
    source: str,
    evidence: dict[str, Any] | None = None,
    reason: str = "",
    actor: Actor = None,
) -> bool:
    """Record an opt-in or opt-out for a topic ('*' = all); True when the state changed.

    An opt-in for a contact who opted out (STOP, the carrier, an operator, an erasure) is an
    override: only a compliance person may make it, with a reason kept in the ledger and trail.
    """
    if action not in ConsentEvent.Action.values:
        raise InvalidInput("Unknown action.", errors={"action": ["opt_in or opt_out."]})
    if source not in ConsentEvent.Source.values:
        raise InvalidInput("Unknown source.", errors={"source": ["Not a consent source."]})
    if not topic or len(topic) > 64:
        raise InvalidInput("A topic is required.", errors={"topic": ["1 to 64 characters."]})
    evidence = json_for_database(evidence or {}, field="evidence")
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    if contact.erased_at is not None:
        raise ContactErased("An erased contact's consent cannot change.")
    evidence = dict(evidence or {})
    override = action == ConsentEvent.Action.OPT_IN and contact.opted_out
    if override:
        reason = consent_override_check(actor=actor, reason=reason)
        evidence.update(override=True, reason=reason, by=actor_label_for(actor))
    changed = consent_apply(
        contact=contact, topic=topic, action=action, source=source, evidence=evidence
    )
    after: dict[str, Any] = {"topic": topic, "source": source, "changed": changed}
    if override:
        after.update(override=True, reason=reason)
    audit_record(
        actor=actor,
        action=f"consent.{action}",
        target_type="contact",
        target_id=contact.pk,
        after=after,
    )
    return changed


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "rejected": self.rejected}


@transaction.atomic
def contacts_import(
    *, text: str, actor: Actor = None, progress: Callable[[int], None] | None = None
) -> ImportReport:
    """Import a CSV (header `phone` + attribute columns + optional `time_zone`, `consent_*`).

    Valid rows are created or updated; invalid rows are reported with their line number and
    change nothing. `consent_<topic>` columns take yes/no and go into the ledger as imports.
    """
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "phone" not in [name.strip() for name in reader.fieldnames]:
        raise InvalidInput(
            "The CSV needs a header row with a `phone` column.", errors={"file": ["No phone."]}
        )
    report = ImportReport()
    seen: set[str] = set()
    for index, row in enumerate(reader):
        line = index + 2  # the header is line 1
        if progress is not None:
            progress(index)  # rows read so far (the job's writer throttles its own writes)
        if index >= settings.CAMPAIGNS_IMPORT_MAX_ROWS:
            report.rejected.append(
                {"line": line, "errors": [f"Over {settings.CAMPAIGNS_IMPORT_MAX_ROWS} rows."]}
            )
            break
        row = {(key or "").strip(): (value or "").strip() for key, value in row.items()}
        try:
            phone = phone_normalize(row.pop("phone", ""))
        except InvalidPhone as error:
            report.rejected.append({"line": line, "errors": [error.detail]})
            continue
        if phone in seen:
            report.rejected.append({"line": line, "errors": [f"{phone} repeats an earlier row."]})
            continue
        seen.add(phone)
        time_zone = row.pop("time_zone", "")
        if time_zone and not zone_is_known(time_zone):
            report.rejected.append({"line": line, "errors": [f"Unknown time zone {time_zone!r}."]})
            continue
        consent = {
            key.removeprefix("consent_"): value.lower() in {"1", "yes", "true", "y"}
            for key, value in list(row.items())
            if key.startswith("consent_") and value
        }
        attributes = {key: value for key, value in row.items() if not key.startswith("consent_")}
        contact = Contact.objects.filter(phone=phone).first()
        if contact is not None and contact.opted_out and any(consent.values()):
            report.rejected.append({"line": line, "errors": [OPT_OUT_KEPT]})
            continue
        if contact is None:
            contact = Contact.objects.create(
                phone=phone, attributes=attributes, **contact_fields(phone, time_zone)
            )
            report.created += 1
        else:
            contact.attributes = {**contact.attributes, **attributes}
            if time_zone:
                contact.time_zone = time_zone
            contact.save(update_fields=["attributes", "time_zone", "updated_at"])
            report.updated += 1
        for topic, opted_in in consent.items():
            consent_apply(
                contact=contact,
                topic=topic,
                action=ConsentEvent.Action.OPT_IN if opted_in else ConsentEvent.Action.OPT_OUT,
                source=ConsentEvent.Source.IMPORT,
                evidence={"line": line},
            )
    audit_record(
        actor=actor,
        action="contact.import",
        target_type="contact",
        target_id="import",
        after={
            "created": report.created,
            "updated": report.updated,
            "rejected": len(report.rejected),
        },
    )
    return report


def subscription_statuses(
    *, contact_ids: Iterable[int], topics: Iterable[str]
) -> dict[tuple[int, str], str]:
    """The consent status of each (contact, topic) that has one, in one query."""
    rows = Subscription.objects.filter(contact_id__in=contact_ids, topic__in=topics)
    return {
        (contact_id, topic): status
        for contact_id, topic, status in rows.values_list("contact_id", "topic", "status")
    }


def consent_refusal(
    *, contact: Contact, topic: str, statuses: Mapping[tuple[int, str], str] | None = None
) -> str:
    """Why this contact may not receive a message on `topic` now, or "".

    `statuses` (from `subscription_statuses`) saves the query when many are checked at once.
    """
    if contact.number_invalid:
        return "invalid_number"
    if contact.opted_out:
        return "opted_out"
    if statuses is not None:
        status = statuses.get((contact.pk, topic))
    else:
        status = (
            Subscription.objects.filter(contact=contact, topic=topic)
            .values_list("status", flat=True)
            .first()
        )
    if status == Subscription.Status.OPTED_OUT:
        return "opted_out"
    if topic not in settings.CAMPAIGNS_IMPLICIT_CONSENT_TOPICS and status is None:
        return "no_consent"
    return ""


def contact_provider_error_apply(*, contact: Contact, code: str, message_id: int) -> None:
    """What a permanent provider error says about the person: unsubscribed, or a bad number."""
    if code == UNSUBSCRIBED_CODE:
        # The carrier says this person unsubscribed: our ledger must agree.
        locked = Contact.objects.select_for_update().get(pk=contact.pk)
        consent_apply(
            contact=locked,
            topic=ConsentEvent.ALL_TOPICS,
            action=ConsentEvent.Action.OPT_OUT,
            source=ConsentEvent.Source.PROVIDER,
            evidence={"error_code": code, "message_id": message_id},
        )
    elif code in BAD_NUMBER_CODES:
        Contact.objects.filter(pk=contact.pk).update(number_invalid=True, updated_at=timezone.now())
