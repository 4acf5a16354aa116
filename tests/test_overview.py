"""The overview frame: the panels a role may read, over the picked range, each polling itself."""

import re

import pytest
from django.test import Client

from campaigns.tests.factories import role_member

pytestmark = pytest.mark.django_db


def _client(role: str) -> Client:
    client = Client()
    client.force_login(role_member(role.replace(" ", "-"), role))
    return client


def test_it_shows_each_role_only_the_panels_it_may_read():
    analyst = _client("analyst").get("/").content.decode()
    manager = _client("campaign manager").get("/").content.decode()

    assert re.findall(r'id="panel-(\w+)"', analyst) == [
        "records",
        "campaigns",
        "decisions",
        "reviews",
    ]
    assert re.findall(r'id="panel-(\w+)"', manager) == ["campaigns"]
    assert ">Contacts</a>" in manager
    assert ">Contacts</a>" not in analyst
    assert ">Predict</a>" not in manager


def test_the_range_picker_swaps_the_panels_which_then_poll_on_their_own():
    client = _client("analyst")

    swapped = client.get("/", {"range": "7d"}, HTTP_HX_REQUEST="true").content.decode()

    assert swapped.lstrip().startswith('<div class="grid panels" id="panels" data-range="7d">')
    assert 'hx-get="/decisions/panel/?range=7d" hx-trigger="load, every 30s"' in swapped
    assert "<h1>" not in swapped
    assert 'data-range="24h"' in client.get("/", {"range": "bogus"}).content.decode()
