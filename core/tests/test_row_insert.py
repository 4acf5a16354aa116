"""row_insert stores exactly the row Model.save() stores, in one statement."""

import pytest
from django.forms.models import model_to_dict

from core.models import IdempotencyRecord
from core.rows import row_insert

pytestmark = pytest.mark.django_db


def _record(key: str) -> IdempotencyRecord:
    return IdempotencyRecord(scope="key:test", key=key, fingerprint="f" * 64, response_body="{}")


def test_it_stores_what_save_stores_and_answers_the_extra_expression(
    django_assert_num_queries,
):
    saved = _record("saved")
    saved.save()
    inserted = _record("inserted")

    with django_assert_num_queries(1):
        extra = row_insert(inserted, also_return="(SELECT 40 + 2)")

    assert extra == 42
    assert inserted.pk is not None
    assert not inserted._state.adding
    assert inserted.created_at is not None  # auto_now_add ran, as in save()
    stored = IdempotencyRecord.objects.get(pk=inserted.pk)
    expected = IdempotencyRecord.objects.get(pk=saved.pk)
    assert stored.created_at >= expected.created_at
    ignored = ["id", "key", "created_at"]
    assert model_to_dict(stored, exclude=ignored) == model_to_dict(expected, exclude=ignored)
