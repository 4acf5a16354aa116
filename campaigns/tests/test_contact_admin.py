"""The contact admin validates through the service: a bad input is a form error, never a
half-done save."""

import pytest

from campaigns.models import ConsentEvent, Contact
from campaigns.tests.factories import contact_factory
from core.models import AuditEntry

pytestmark = pytest.mark.django_db


def test_it_creates_a_contact_through_the_service_from_any_form_of_the_number(staff_client):
    response = staff_client.post(
        "/admin/campaigns/contact/add/",
        {"phone": "(415) 555-2671", "attributes": '{"plan": "gold"}', "time_zone": ""},
    )
    assert response.status_code == 302
    contact = Contact.objects.get()
    assert (contact.phone, contact.attributes, contact.region) == (
        "+14155552671",
        {"plan": "gold"},
        "US",
    )
    assert AuditEntry.objects.filter(action="contact.create").count() == 1


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"phone": "123"}, "phone", "'123' is not a valid phone number."),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "An IANA zone name."),
        ({"attributes": "[1, 2]"}, "attributes", "An object."),
    ],
)
def test_it_shows_a_bad_contact_as_a_form_error_and_writes_nothing(
    staff_client, fields, field, message
):
    data = {"phone": "+14155552671", "attributes": "{}", "time_zone": "", **fields}
    response = staff_client.post("/admin/campaigns/contact/add/", data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors[field] == [message]
    assert Contact.objects.count() == 0
    assert AuditEntry.objects.count() == 0


def test_it_refuses_a_second_contact_for_the_same_number_as_a_form_error(staff_client):
    contact_factory(phone="+14155552671")
    response = staff_client.post(
        "/admin/campaigns/contact/add/",
        {"phone": "415-555-2671", "attributes": "{}", "time_zone": ""},
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["phone"] == ["Already exists."]
    assert Contact.objects.count() == 1


def test_it_shows_a_bad_time_zone_on_change_as_a_form_error_and_keeps_the_contact(staff_client):
    contact = contact_factory(time_zone="")
    response = staff_client.post(
        f"/admin/campaigns/contact/{contact.pk}/change/",
        {"attributes": '{"plan": "silver"}', "time_zone": "Mars/Olympus"},
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["time_zone"] == ["An IANA zone name."]
    contact.refresh_from_db()
    assert (contact.time_zone, contact.attributes.get("plan")) == ("", "gold")
    assert not AuditEntry.objects.filter(action="contact.update").exists()
    assert ConsentEvent.objects.filter(contact=contact).count() == 1
