"""The HTMX pages through the Django test client (the browser flows live in tests/)."""

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from decisions.models import Decision
from decisions.tests.factories import register_event, rule_with_version

pytestmark = pytest.mark.django_db


def test_it_lists_decisions_with_filters_in_a_fixed_number_of_queries(
    staff_client, django_assert_num_queries
):
    rule_with_version(condition="event.amount > 1000", outcome="review")
    for amount in (1, 2000, 3000):
        register_event({"amount": amount})

    with django_assert_num_queries(4):  # session, user, count, page (htmx: no choices)
        partial = staff_client.get(
            reverse("decisions:list"), {"outcome": "review"}, HTTP_HX_REQUEST="true"
        )
    full = staff_client.get(reverse("decisions:list"))

    assert partial.content.decode().count("badge review") == 2
    assert "<html" not in partial.content.decode()
    assert "3 decisions" in full.content.decode()
    assert 'data-testid="filters"' in full.content.decode()


def test_it_paginates_the_list(staff_client):
    for amount in range(27):
        register_event({"amount": amount})

    second = staff_client.get(reverse("decisions:list"), {"page": 2})

    assert "Page 2 of 2" in second.content.decode()
    assert second.content.decode().count('href="/decisions/') >= 2


def test_it_shows_a_decision_with_trace_and_replays_it(staff_client):
    rule_with_version(condition="event.amount > 1000", outcome="review")
    rule_with_version(key="shadowed", condition="event.nope", outcome="decline", status="shadow")
    decision = register_event({"amount": 2000})

    page = staff_client.get(reverse("decisions:detail", args=[decision.pk]))
    replay = staff_client.post(
        reverse("decisions:replay", args=[decision.pk]), HTTP_HX_REQUEST="true"
    )

    content = page.content.decode()
    assert "high-amount" in content
    assert "← decided" in content
    assert "error" in content
    assert "Replay matches" in replay.content.decode()
    assert staff_client.get(reverse("decisions:detail", args=[999999])).status_code == 404


def test_it_fills_the_overview_panel_per_outcome_and_time_bucket(
    staff_client, django_assert_num_queries
):
    rule_with_version(condition="event.amount > 1000", outcome="review")
    for amount in (1, 2000, 3000):
        register_event({"amount": amount})
    Decision.objects.filter(outcome="approve").update(
        decided_at=timezone.now() - timedelta(hours=3)
    )

    # Session, user, one grouped count (the review queue has a panel of its own).
    with django_assert_num_queries(3):
        panel = staff_client.get(reverse("decisions:panel"), {"range": "24h"})
    hour = staff_client.get(reverse("decisions:panel"), {"range": "1h"}).content.decode()

    content = panel.content.decode()
    assert 'data-testid="decisions-total">3<' in content
    assert "badge review" in content
    # Two columns drawn: the review bucket (now) and the approve bucket (3 hours ago).
    assert len(re.findall(r'<rect class="tone-(good|watch)" x=', content)) == 2
    assert 'data-testid="decisions-total">2<' in hour
    assert ("decisions", "Decisions in the last 24 h", "decisions:panel") in (
        settings.DASHBOARD_PANELS
    )


def test_it_sends_anonymous_visitors_to_the_login_page(client):
    response = client.get(reverse("decisions:list"))

    assert response.status_code == 302
    assert "/login/" in response["Location"]
