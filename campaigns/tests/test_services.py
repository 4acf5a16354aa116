"""Services against the real database: contacts, consent, preview, launch, the send pipeline."""

import socket
from datetime import time, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import transaction
from django.db.models import JSONField, Value
from django.utils import timezone

from campaigns import audience, selectors, services
from campaigns.exceptions import CampaignStateConflict, ReferenceConflict
from campaigns.models import (
    Campaign,
    ConsentEvent,
    Contact,
    Message,
    MessageTransition,
    SimulatedMessage,
    WebhookRequest,
)
from campaigns.providers import provider_get
from campaigns.providers.simulator import callback_post
from campaigns.ratelimit import rate_limit_acquire, rate_limit_reserve, rate_limit_reset
from campaigns.services import lifecycle, sending
from campaigns.services.states import message_transition
from campaigns.tests.factories import campaign_factory, contact_factory
from campaigns.windows import SendWindow, next_allowed
from core.errors import Conflict, InvalidInput
from core.models import AuditEntry
from tests.support.fake_twilio import FakeTwilio

pytestmark = pytest.mark.django_db


def test_it_creates_a_contact_with_zones_and_a_consent_ledger():
    contact = contact_factory(phone="(415) 555-2671", time_zone="")
    assert contact.phone == "+14155552671"
    assert (contact.region, contact.number_time_zones) == ("US", "America/Los_Angeles")
    assert list(contact.consent_events.values_list("topic", "action", "source")) == [
        ("marketing", "opt_in", "api")
    ]
    assert AuditEntry.objects.filter(action="contact.create", target_id=str(contact.pk)).exists()


def test_it_refuses_a_second_contact_for_the_same_number_in_another_form():
    contact_factory(phone="+14155552671")
    with pytest.raises(Conflict) as raised:
        contact_factory(phone="415-555-2671")
    assert list(raised.value.errors) == ["phone"]
    assert Contact.objects.count() == 1


def test_it_records_every_consent_event_but_reports_only_real_changes():
    contact = contact_factory()
    assert services.consent_change(
        contact=contact, topic="marketing", action="opt_out", source="api"
    )
    assert not services.consent_change(
        contact=contact, topic="marketing", action="opt_out", source="api"
    )
    assert contact.consent_events.count() == 3
    assert selectors.consent_state(contact=contact)["topics"] == {"marketing": "opted_out"}


def test_it_imports_csv_and_reports_rejected_rows_by_line():
    text = (
        "phone,first_name,time_zone,consent_marketing\n"
        "+14155552671,Ada,,yes\n"
        "12,Bob,,yes\n"
        "(415) 555-2672,Cy,Mars/Olympus,no\n"
        "415-555-2671,Ada again,,\n"
        "+14155552673,Di,Europe/London,no\n"
    )
    rows_read: list[int] = []
    report = services.contacts_import(text=text, progress=rows_read.append)
    assert rows_read == [0, 1, 2, 3, 4]  # what an import job writes as its progress
    assert (report.created, report.updated) == (2, 0)
    assert [row["line"] for row in report.rejected] == [3, 4, 5]
    assert "repeats" in report.rejected[2]["errors"][0]
    london = Contact.objects.get(phone="+14155552673")
    assert london.time_zone == "Europe/London"
    assert london.subscriptions.get(topic="marketing").status == "opted_out"


def test_it_imports_through_the_command_with_a_line_numbered_report(tmp_path):
    path = tmp_path / "contacts.csv"
    path.write_text("phone,plan\n+14155552671,gold\nnope,gold\n")
    out = StringIO()
    call_command("import_contacts", str(path), stdout=out)
    assert "line 3:" in out.getvalue()
    assert "1 created, 0 updated, 1 rejected." in out.getvalue()


def test_it_loads_demo_contacts_idempotently():
    call_command("load_demo_contacts", "--count", "30", stdout=StringIO())
    call_command("load_demo_contacts", "--count", "30", stdout=StringIO())
    assert Contact.objects.count() == 30
    assert Campaign.objects.filter(status="draft").count() == 1
    assert len({contact.region for contact in Contact.objects.all()}) >= 4


def _audience() -> dict[str, Contact]:
    contacts = {
        "eligible": contact_factory(),
        "other_plan": contact_factory(attributes={"first_name": "Bo", "plan": "free"}),
        "no_plan": contact_factory(attributes={"first_name": "Cy"}),
        "global_stop": contact_factory(),
        "topic_stop": contact_factory(),
        "no_consent": contact_factory(consent={}),
        "invalid": contact_factory(),
        "capped": contact_factory(),
        "template": contact_factory(attributes={"plan": "gold"}),
    }
    services.consent_change(
        contact=contacts["global_stop"], topic="*", action="opt_out", source="sms_keyword"
    )
    services.consent_change(
        contact=contacts["topic_stop"], topic="marketing", action="opt_out", source="api"
    )
    Contact.objects.filter(pk=contacts["invalid"].pk).update(number_invalid=True)
    Message.objects.create(
        contact=contacts["capped"],
        topic="marketing",
        status="delivered",
        body="earlier",
        send_after=timezone.now(),
        claimed_at=timezone.now() - timedelta(hours=1),
        provider_sid="SM-earlier",
    )
    return contacts


def test_it_previews_matches_exclusions_by_reason_and_rendered_samples():
    _audience()
    campaign = campaign_factory(frequency_cap={"max_messages": 1, "per_hours": 24})
    preview = selectors.campaign_preview(campaign=campaign)
    assert preview["contacts"] == 9
    assert preview["matched"] == 7
    assert preview["segment_errors"] == 1  # no `plan` attribute: not in the segment
    assert preview["eligible"] == 1
    assert preview["excluded"] == {
        "country_not_allowed": 0,
        "invalid_number": 1,
        "opted_out": 2,
        "no_consent": 1,
        "frequency_cap": 1,
        "template_error": 1,
        "no_send_window": 0,
    }
    sample = preview["samples"][0]
    assert sample["body"] == "Hi Ada, your gold offer is waiting."
    assert (sample["encoding"], sample["segments"], sample["characters"]) == ("GSM-7", 1, 35)
    assert Message.objects.count() == 1  # a preview writes nothing


def test_it_reads_every_kind_of_attributes_the_same_streamed_and_as_a_window():
    stored = [
        {"plan": "gold", "note": 'quote " backslash \\ tab \t é 😀', "n": [1, {"x": None}]},
        {},
        [1, 2],
        "text",
        None,  # JSON null, not SQL NULL
    ]
    for attributes in stored:
        contact = contact_factory()
        Contact.objects.filter(pk=contact.pk).update(attributes=Value(attributes, JSONField()))

    streamed = list(audience.audience_contacts())
    window = audience.audience_window(limit=len(stored))

    assert [row[2] for row in streamed] == stored
    assert window == streamed
    assert audience.audience_window(limit=2) == streamed[:2]


def test_it_launches_one_message_per_matched_contact_with_reasons_for_exclusions():
    contacts = _audience()
    campaign = campaign_factory(frequency_cap={"max_messages": 1, "per_hours": 24})
    services.campaign_launch(campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.status == "running"
    messages = {m.contact_id: m for m in campaign.messages.all()}
    assert len(messages) == 7
    assert messages[contacts["eligible"].pk].status == "pending"
    assert messages[contacts["eligible"].pk].body == "Hi Ada, your gold offer is waiting."
    assert messages[contacts["capped"].pk].cancel_reason == "frequency_cap"
    assert messages[contacts["template"].pk].cancel_reason == "template_error"
    assert campaign.launch_summary["eligible"] == 1
    with pytest.raises(CampaignStateConflict):
        services.campaign_launch(campaign=campaign)
    assert campaign.messages.count() == 7


def test_launch_streams_bodies_with_copy_escapes_intact_across_chunks(monkeypatch):
    # Several COPY chunks, and names holding the characters COPY's text format escapes.
    monkeypatch.setattr(lifecycle, "_COPY_CHUNK", 2)
    names = ["Tab\there", "Two\nlines", "Back\\slash", "Carriage\rreturn", "Plain"]
    contacts = [contact_factory(attributes={"first_name": name, "plan": "gold"}) for name in names]
    opted_out = contact_factory(consent={"marketing": False})
    campaign = campaign_factory(template="Hi {{ contact.attributes.first_name }}!")
    services.campaign_launch(campaign=campaign)
    bodies = dict(campaign.messages.values_list("contact_id", "body"))
    assert bodies == {
        **{contact.pk: f"Hi {name}!" for contact, name in zip(contacts, names, strict=True)},
        opted_out.pk: "",
    }
    assert campaign.messages.get(contact=opted_out).cancel_reason == "opted_out"


def test_it_schedules_a_launch_with_a_future_start_and_respects_quiet_hours():
    contact_factory(time_zone="Asia/Tokyo")
    start = (timezone.now() + timedelta(days=2)).replace(microsecond=0)
    campaign = campaign_factory(
        start_at=start.isoformat(), send_window={"start": "09:00", "end": "10:00"}
    )
    services.campaign_launch(campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.status == "scheduled"
    message = campaign.messages.get()
    window = SendWindow(start=time(9, 0), end=time(10, 0))
    assert message.send_after == next_allowed(start, ("Asia/Tokyo",), window)
    local = message.send_after.astimezone(ZoneInfo("Asia/Tokyo"))
    assert message.send_after >= start
    assert local.hour == 9


def test_it_only_edits_drafts():
    campaign = campaign_factory()
    services.campaign_update(campaign=campaign, name="Renamed")
    with pytest.raises(InvalidInput):
        services.campaign_update(campaign=campaign, config={"template": ""})
    services.campaign_launch(campaign=campaign)
    with pytest.raises(CampaignStateConflict):
        services.campaign_update(campaign=campaign, name="Too late")
    assert Campaign.objects.get(pk=campaign.pk).name == "Renamed"


def test_it_dispatches_due_messages_of_running_campaigns_within_the_rate_budget(
    django_capture_on_commit_callbacks, settings
):
    settings.CAMPAIGNS_DISPATCH_AHEAD_SECONDS = 1
    for _ in range(5):
        contact_factory()
    running = campaign_factory(rate_per_second=3)
    paused = campaign_factory(name="Paused")
    services.campaign_launch(campaign=running)
    services.campaign_launch(campaign=paused)
    services.campaign_pause(campaign=paused)
    with django_capture_on_commit_callbacks() as callbacks:
        dispatched = services.messages_dispatch()
    assert dispatched == 3
    assert running.messages.filter(status="queued").count() == 3
    assert paused.messages.filter(status="pending").count() == 5
    assert len(callbacks) == 1
    assert MessageTransition.objects.filter(to_status="queued", source="dispatcher").count() == 3


def test_it_pauses_queued_messages_back_to_pending_and_cancels_the_rest():
    for _ in range(4):
        contact_factory()
    campaign = campaign_factory()
    services.campaign_launch(campaign=campaign)
    services.messages_dispatch()
    services.campaign_pause(campaign=campaign)
    assert set(campaign.messages.values_list("status", flat=True)) == {"pending"}
    services.campaign_cancel(campaign=campaign)
    assert set(campaign.messages.values_list("cancel_reason", flat=True)) == {"campaign_canceled"}
    assert Campaign.objects.get(pk=campaign.pk).status == "canceled"
    with pytest.raises(CampaignStateConflict):
        services.campaign_resume(campaign=campaign)


def test_it_enqueues_a_transactional_message_on_commit_and_only_once_per_reference(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks() as callbacks:
        message = services.transactional_message_send(
            phone="415-555-2671",
            template="Your application {{ application_id }} was {{ outcome }}.",
            context={"application_id": "A-17", "outcome": "approved"},
            reference="decision:17",
        )
    assert len(callbacks) == 1
    assert (message.status, message.body) == ("queued", "Your application A-17 was approved.")
    again = services.transactional_message_send(
        phone="+14155552671", template="ignored", context={}, reference="decision:17"
    )
    assert again.pk == message.pk
    with pytest.raises(ReferenceConflict):
        services.transactional_message_send(
            phone="+14155552672", template="x", context={}, reference="decision:17"
        )
    assert Message.objects.count() == 1


def test_it_leaves_nothing_when_the_callers_transaction_rolls_back(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        services.transactional_message_send(
            phone="+14155552671", template="Hi", context={}, reference="decision:18"
        )
        transaction.set_rollback(True)
    assert callbacks == []
    assert not Message.objects.exists()


def test_it_returns_a_canceled_transactional_message_for_an_opted_out_contact():
    contact = contact_factory()
    services.consent_change(contact=contact, topic="*", action="opt_out", source="sms_keyword")
    message = services.transactional_message_send(
        phone=contact.phone, template="Hi", context={}, reference="decision:19"
    )
    assert (message.status, message.cancel_reason) == ("canceled", "opted_out")


def test_it_refuses_a_transactional_template_with_an_undefined_variable():
    with pytest.raises(InvalidInput):
        services.transactional_message_send(
            phone="+14155552671", template="Hi {{ name }}", context={}, reference="decision:20"
        )
    assert not Message.objects.exists()


def test_it_backs_off_exponentially_with_jitter(settings):
    settings.CAMPAIGNS_RETRY_BASE_SECONDS = 2
    settings.CAMPAIGNS_RETRY_MAX_SECONDS = 60
    delays = [services.retry_delay(attempt) for attempt in (1, 2, 3, 10)]
    assert 1 <= delays[0] <= 2
    assert 2 <= delays[1] <= 4
    assert 4 <= delays[2] <= 8
    assert 30 <= delays[3] <= 60


def _sending_message(phone: str = "+14155552671") -> Message:
    contact_factory(phone=phone)
    campaign = campaign_factory()
    services.campaign_launch(campaign=campaign)
    message = campaign.messages.get()
    Message.objects.filter(pk=message.pk).update(status="sending", claimed_at=timezone.now())
    return Message.objects.get(pk=message.pk)


def _status(message: Message, status: str, token: str, error_code: str = "") -> str:
    webhook = services.webhook_store(kind="status", url="http://x/", headers={}, body="")
    params = {"MessageSid": "SM1", "MessageStatus": status, "ErrorCode": error_code}
    return services.webhook_process(
        webhook=webhook, params=params, dedup_key=token, message_ref=str(message.pk)
    ).outcome


def test_it_never_moves_a_message_backwards_on_late_callbacks():
    message = _sending_message()
    assert _status(message, "delivered", "t1") == "processed"
    assert _status(message, "sent", "t2") == "processed"
    assert _status(message, "queued", "t3") == "processed"
    message.refresh_from_db()
    assert (message.status, message.provider_sid) == ("delivered", "SM1")
    assert list(message.transitions.values_list("to_status", flat=True)) == ["delivered"]


def test_it_processes_a_repeated_callback_once():
    message = _sending_message()
    assert _status(message, "sent", "same") == "processed"
    assert _status(message, "sent", "same") == "duplicate"
    assert WebhookRequest.objects.filter(outcome="duplicate").count() == 1


def test_it_opts_the_contact_out_on_a_21610_receipt():
    message = _sending_message()
    _status(message, "failed", "t1", error_code="21610")
    contact = Contact.objects.get(pk=message.contact_id)
    assert contact.opted_out is True
    assert contact.consent_events.filter(source=ConsentEvent.Source.PROVIDER).count() == 1


@pytest.fixture
def fake_twilio(settings):
    with FakeTwilio(auth_token="t") as fake:
        settings.SMS_PROVIDER = "twilio"
        settings.TWILIO_ACCOUNT_SID = fake.account_sid
        settings.TWILIO_AUTH_TOKEN = "t"
        settings.TWILIO_API_BASE_URL = fake.url
        fake.send_callbacks = False
        yield fake


def test_it_reconciles_an_unknown_message_by_asking_the_provider(fake_twilio):
    fake = fake_twilio
    message = _sending_message()
    fake.no_callbacks(message.contact.phone)
    provider_get().send(to=message.contact.phone, body=message.body, status_callback="")
    Message.objects.filter(pk=message.pk).update(status="unknown")
    counts = services.messages_reconcile()
    message.refresh_from_db()
    assert counts["updated"] == 1
    assert message.status == "delivered"
    assert message.provider_sid == fake.accepted()[0].sid


def test_it_requeues_an_unknown_message_the_provider_never_saw(fake_twilio, settings):
    settings.CAMPAIGNS_UNKNOWN_GIVE_UP_SECONDS = 0
    message = _sending_message()
    Message.objects.filter(pk=message.pk).update(status="unknown")
    counts = services.messages_reconcile()
    assert fake_twilio.create_calls == []
    message.refresh_from_db()
    assert counts["requeued"] == 1
    assert message.status == "pending"


def test_it_refuses_a_move_outside_the_transition_table():
    message = _sending_message()
    _status(message, "delivered", "t1")
    message.refresh_from_db()
    with pytest.raises(RuntimeError), transaction.atomic():
        message_transition(message, "pending", MessageTransition.Source.WORKER)
    assert Message.objects.get(pk=message.pk).status == "delivered"


def _queued_message() -> Message:
    contact_factory()
    campaign = campaign_factory(rate_per_second=1)
    services.campaign_launch(campaign=campaign)
    rate_limit_reset(key=f"campaign:{campaign.pk}")
    services.messages_dispatch()
    return campaign.messages.get(status="queued")


def test_a_batch_is_claimed_at_once_sent_in_paced_slots_and_recorded(fake_twilio, settings):
    # Given four queued messages of a campaign sending 20 a second, one of them refused by consent
    settings.CAMPAIGNS_DISPATCH_AHEAD_SECONDS = 1
    phones = ["+14155552671", "+14155552672", "+14155552673", "+14155552674"]
    contacts = [contact_factory(phone=phone) for phone in phones]
    campaign = campaign_factory(rate_per_second=20)
    services.campaign_launch(campaign=campaign)
    rate_limit_reset(key=f"campaign:{campaign.pk}")
    services.messages_dispatch()
    services.consent_change(contact=contacts[3], topic="marketing", action="opt_out", source="api")
    ids = list(campaign.messages.order_by("pk").values_list("pk", flat=True))

    # When one task sends them as a batch
    started = timezone.now()
    outcomes = services.messages_send(message_ids=ids)

    # Then each consenting person got one message, in slots 1/20 s apart: the n-th cannot
    # reach the provider before n/20 s after the batch began
    assert list(outcomes.values()) == ["sent", "sent", "sent", "held:opted_out"]
    arrivals = sorted(message.created_at for message in fake_twilio.accepted())
    assert [call["To"] for call in fake_twilio.create_calls] == phones[:3]
    assert all(
        [arrival - started >= timedelta(seconds=n / 20) for n, arrival in enumerate(arrivals)]
    )
    # ... and every sent message holds its own SID and a complete ledger
    sids = {message.to: message.sid for message in fake_twilio.accepted()}
    for message in campaign.messages.filter(status="sent").select_related("contact"):
        assert message.provider_sid == sids[message.contact.phone]
        assert (message.attempts, message.sent_at is not None) == (1, True)
        assert list(message.transitions.values_list("to_status", flat=True)) == [
            "queued",
            "sending",
            "sent",
        ]
    assert campaign.messages.get(contact=contacts[3]).status == "canceled"


def test_a_claim_that_gets_no_tokens_goes_back_to_pending_without_using_an_attempt(
    fake_twilio, settings
):
    settings.CAMPAIGNS_RATE_WAIT_MAX_SECONDS = 0
    message = _queued_message()
    key = f"campaign:{message.campaign_id}"
    assert rate_limit_acquire(key=key, rate=1, cost=1, max_wait=0)  # the bucket is now empty
    assert services.message_send(message_id=message.pk) == "held:rate_limited"
    message.refresh_from_db()
    assert (message.status, message.attempts, message.claimed_at) == ("pending", 0, None)
    assert list(message.transitions.values_list("to_status", flat=True)) == [
        "queued",
        "sending",
        "pending",
    ]
    assert fake_twilio.create_calls == []


@pytest.mark.parametrize(
    ("operator_action", "status", "reason"),
    [
        (services.campaign_pause, "pending", ""),
        (services.campaign_cancel, "canceled", "campaign_canceled"),
    ],
)
def test_a_pause_or_cancel_during_the_wait_for_tokens_stops_the_send(
    fake_twilio, monkeypatch, operator_action, status, reason
):
    message = _queued_message()

    def acquire_while_the_operator_acts(**kwargs):
        operator_action(campaign=message.campaign)
        return rate_limit_reserve(**kwargs)

    monkeypatch.setattr(sending, "rate_limit_reserve", acquire_while_the_operator_acts)
    assert services.message_send(message_id=message.pk).startswith("held:campaign_")
    message.refresh_from_db()
    assert (message.status, message.cancel_reason, message.attempts) == (status, reason, 0)
    assert fake_twilio.create_calls == []


def test_a_claim_taken_by_reconciliation_during_the_wait_is_not_sent(
    fake_twilio, monkeypatch, settings
):
    settings.CAMPAIGNS_SENDING_TIMEOUT_SECONDS = 0
    message = _queued_message()

    def acquire_while_reconciliation_runs(**kwargs):
        assert kwargs["max_wait"] == 0  # the wait never outlasts the sending timeout
        services.messages_reconcile(now=timezone.now() + timedelta(seconds=1))
        return rate_limit_reserve(**kwargs)

    monkeypatch.setattr(sending, "rate_limit_reserve", acquire_while_reconciliation_runs)
    assert services.message_send(message_id=message.pk) == "skipped"
    assert fake_twilio.create_calls == []
    assert Message.objects.get(pk=message.pk).status == "unknown"


def _closed_port_url() -> str:
    """A local URL nobody listens on: callbacks posted there never arrive."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_a_provider_nobody_listens_on_is_a_send_that_never_left_and_is_retried(
    fake_twilio, settings
):
    settings.TWILIO_API_BASE_URL = _closed_port_url()  # the request cannot even connect
    message = _queued_message()
    assert services.message_send(message_id=message.pk) == "error:connection"
    message.refresh_from_db()
    assert (message.status, message.error_code, message.attempts) == ("pending", "connection", 1)
    assert message.send_after > timezone.now()  # retried later, not parked as unknown


def test_it_settles_a_sent_message_whose_receipts_never_arrive_after_five_minutes(
    settings, django_capture_on_commit_callbacks
):
    # Given the simulator posting its receipts to a port where nothing listens
    settings.SMS_PROVIDER = "simulator"
    settings.PUBLIC_BASE_URL = _closed_port_url()
    contact_factory(phone="+14155552671")
    contact_factory(phone="+14155552672")
    campaign = campaign_factory(rate_per_second=100)
    services.campaign_launch(campaign=campaign)
    rate_limit_reset(key=f"campaign:{campaign.pk}")
    services.messages_dispatch()
    with django_capture_on_commit_callbacks():  # the receipts go nowhere but the closed port
        ids = list(campaign.messages.values_list("pk", flat=True))
        assert set(services.messages_send(message_ids=ids).values()) == {"sent"}
    old, young = campaign.messages.order_by("contact__phone")
    for simulated in SimulatedMessage.objects.all():
        assert callback_post(sid=simulated.sid, status="sent") is False
    # ... one message has waited five minutes for its receipt, the other not quite
    now = timezone.now()
    for message, age in ((old, 301), (young, 299)):
        sent_at = now - timedelta(seconds=age)
        Message.objects.filter(pk=message.pk).update(sent_at=sent_at)
        SimulatedMessage.objects.filter(to=message.contact.phone).update(created_at=sent_at)

    # When reconciliation runs with the default settings
    counts = services.messages_reconcile(now=now)

    # Then the provider was asked about the old one only, and its answer is recorded
    old.refresh_from_db()
    young.refresh_from_db()
    final_status = SimulatedMessage.objects.get(to=old.contact.phone).final_status
    assert counts["updated"] == 1
    assert old.status == final_status
    assert old.status in {"delivered", "undelivered", "failed"}
    assert list(
        old.transitions.filter(source="reconcile").values_list("from_status", "to_status")
    ) == [("sent", final_status)]
    assert young.status == "sent"
    assert not young.transitions.filter(source="reconcile").exists()


@pytest.mark.django_db(transaction=True)
def test_receipts_commit_without_waiting_for_the_disk_and_the_session_keeps_its_setting():
    from django.db import connection

    message = _sending_message()
    sending._messages_sent([(message.pk, "SM" + "7" * 32)])  # its own, real transaction

    message.refresh_from_db()
    assert (message.status, message.provider_sid) == ("sent", "SM" + "7" * 32)
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"  # SET LOCAL ended with that transaction
