"""Personal data masks: enough to recognise a row, not enough to use it."""

import pytest
from django.db import transaction

from core.models import AuditEntry
from core.pii import features_mask, phone_mask, pii_read_audit, text_mask


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("+447700900123", "+44 7•••• ••123"),
        ("+4915112345678", "+49 1•••• •••678"),
        ("+12025550123", "+1 2•••• ••123"),
        ("+33612345678", "+33 6•••• •678"),
    ],
)
def test_it_keeps_the_country_code_and_the_last_three_digits(phone, masked):
    assert phone_mask(phone) == masked


def test_it_hides_bodies_and_feature_values_but_not_their_shape():
    assert text_mask("Your code is 1234") == "[17 characters hidden]"
    assert features_mask({"age": 31, "purpose": "car"}) == {"age": "•••", "purpose": "•••"}


@pytest.mark.django_db
def test_an_unmasked_read_is_audited_naming_the_rows():
    with transaction.atomic():
        pii_read_audit(actor=None, target_type="contact", target_ids=[3, 4])

    entry = AuditEntry.objects.get(action="pii.read")
    assert entry.after == {"ids": ["3", "4"]}
