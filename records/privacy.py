"""An applicant's features as a reader may see them: masked without `pii:read`, and an unmasked
read audited (core.pii). The drivers repeat each feature's value, and the embedding is the
model's encoding of the features, so both go with them."""

import copy
from typing import Any

from core.pii import MASK, features_mask, may_read_pii, pii_read_audit
from records.models import PredictionRecord


def record_shown(record: PredictionRecord, *, reader: Any) -> PredictionRecord:
    """The record itself for a reader with pii:read (audited); otherwise a masked copy.

    The copy is for display only and is never saved.
    """
    if may_read_pii(reader):
        pii_read_audit(actor=reader, target_type="prediction_record", target_ids=[record.pk])
        return record
    shown = copy.copy(record)
    shown.features = features_mask(record.features or {})
    shown.drivers = [{**driver, "value": MASK * 3} for driver in record.drivers or []]
    shown.embedding = None
    return shown
