"""Event payloads are kept RETENTION_EVENT_PAYLOAD_DAYS, then blanked (audited), not replayed."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import AuditEntry
from decisions import replay_selectors, services
from decisions.exceptions import ReplayUnavailable
from decisions.models import Decision, Event
from decisions.tests.factories import register_event

pytestmark = pytest.mark.django_db


def test_it_blanks_old_payloads_keeps_the_decisions_and_refuses_their_replay(settings):
    settings.RETENTION_EVENT_PAYLOAD_DAYS = 30
    old = register_event({"amount": 9000, "phone": "+447700900123"})
    recent = register_event({"amount": 10})
    Event.objects.filter(pk=old.event_id).update(received_at=timezone.now() - timedelta(days=31))

    report = services.event_payloads_purge()

    purged, kept = Event.objects.get(pk=old.event_id), Event.objects.get(pk=recent.event_id)
    assert report.deleted == 1
    assert (purged.payload, purged.payload_purged_at is not None) == ({}, True)
    assert kept.payload == {"amount": 10}
    assert Decision.objects.filter(pk=old.pk).exists()
    entry = AuditEntry.objects.get(action="retention.purge", target_type="event_payload")
    assert entry.after["blanked"] == 1
    with pytest.raises(ReplayUnavailable):
        replay_selectors.decision_replay(decision=Decision.objects.get(pk=old.pk))
    assert replay_selectors.decision_replay(decision=Decision.objects.get(pk=recent.pk))["matches"]


def test_a_second_run_finds_nothing_more_to_blank(settings):
    settings.RETENTION_EVENT_PAYLOAD_DAYS = 30
    old = register_event({"amount": 1})
    Event.objects.filter(pk=old.event_id).update(received_at=timezone.now() - timedelta(days=40))
    services.event_payloads_purge()

    assert services.event_payloads_purge().deleted == 0
