"""Personal data in campaigns: how numbers and bodies are shown, and the hash kept once erased.

Whoever lacks `pii:read` sees `core.pii`'s masks; an erased contact's marker is no personal data
and shows as it is, to everyone.
"""

import hashlib
import hmac
import re
from typing import Any

from django.conf import settings

from campaigns.models import ERASED_PREFIX, Contact
from core.audit import Actor
from core.pii import may_read_pii, phone_mask, pii_read_audit, text_mask

# A number inside free text (a provider's error message quotes the number it refused).
NUMBER_IN_TEXT = re.compile(r"\+?\d[\d ]{6,18}\d")


def phone_hash(phone: str) -> str:
    """The salted hash (HMAC-SHA256, salt `PII_HASH_SALT`) that stands for a number in the
    consent ledger, so the ledger stays evidence once the number itself is erased."""
    return hmac.new(settings.PII_HASH_SALT.encode(), phone.encode(), hashlib.sha256).hexdigest()


def erased_marker(phone: str) -> str:
    """What an erased contact's phone becomes: unique, and no way back to the number."""
    return f"{ERASED_PREFIX}{phone_hash(phone)[:16]}"


def phone_shown(phone: str, *, mask: bool) -> str:
    if not mask or phone.startswith(ERASED_PREFIX):
        return phone
    return phone_mask(phone)


def body_shown(body: str, *, mask: bool) -> str:
    return text_mask(body) if mask else body


def numbers_shown(text: str, *, mask: bool) -> str:
    """Free text (an error message) with any number in it masked."""
    if not mask or not text:
        return text
    return NUMBER_IN_TEXT.sub(lambda found: phone_mask(found.group().replace(" ", "")), text)


def preview_shown(preview: dict[str, Any], *, mask: bool) -> dict[str, Any]:
    """A campaign preview whose sample numbers, bodies and template errors fit the viewer."""
    if not mask:
        return preview
    samples = [
        {**sample, "phone": phone_mask(sample["phone"]), "body": text_mask(sample["body"])}
        for sample in preview["samples"]
    ]
    errors = [numbers_shown(error, mask=True) for error in preview["template_errors"]]
    return {**preview, "samples": samples, "template_errors": errors}


def preview_read(preview: dict[str, Any], *, viewer: Actor) -> dict[str, Any]:
    """The preview as `viewer` may see it; shown unmasked, its sampled contacts are audited."""
    if not may_read_pii(viewer):
        return preview_shown(preview, mask=True)
    phones = [sample["phone"] for sample in preview["samples"]]
    if phones:
        shown = list(Contact.objects.filter(phone__in=phones).values_list("pk", flat=True))
        pii_read_audit(actor=viewer, target_type="contact", target_ids=shown)
    return preview
