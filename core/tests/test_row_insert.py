"""row_insert stores exactly the row Model.save() stores, in one statement."""

import pytest
from django.forms.models import model_to_dict
from django.utils import timezone

from core.rows import row_insert
from decisions.models import Event

pytestmark = pytest.mark.django_db


def _event(key: str) -> Event:
    return Event(
        type="loan_application",
        payload={"amount": 12.5, "tags": ["a", None], "nested": {"x": True}},
        risk_request=None,
        idempotency_key=key,
        client_scope="key:test",
        fingerprint="f" * 64,
        received_at=timezone.now(),
    )


def test_it_stores_what_save_stores_and_answers_the_extra_expression(
    django_assert_num_queries,
):
    saved = _event("saved")
    saved.save()
    inserted = _event("inserted")
    inserted.received_at = saved.received_at

    with django_assert_num_queries(1):
        extra = row_insert(inserted, also_return="(SELECT 40 + 2)")

    assert extra == 42
    assert inserted.pk is not None and not inserted._state.adding
    stored = model_to_dict(Event.objects.get(pk=inserted.pk), exclude=["id", "idempotency_key"])
    expected = model_to_dict(Event.objects.get(pk=saved.pk), exclude=["id", "idempotency_key"])
    assert stored == expected
