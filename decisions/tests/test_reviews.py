"""The review queue: a `review` decision opens a case; one reviewer claims it at a time (the
claim expires); it is resolved beside the engine's decision, audited, over the API and the page."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from core.access import Scope
from core.errors import InvalidInput
from core.models import AuditEntry
from core.tests.identities import key_client, person, session_client
from decisions import replay_selectors, review_selectors, services
from decisions.exceptions import ReviewCaseConflict
from decisions.models import ReviewCase
from decisions.tests.factories import register_event, rule_with_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def review_rule():
    return rule_with_version(condition="event.amount > 1000", outcome="review")


def open_case(amount: int = 5000, customer: str = "c-1") -> ReviewCase:
    decision = register_event({"amount": amount, "customer_id": customer})
    return ReviewCase.objects.get(decision=decision)


def test_a_review_decision_opens_one_case_and_other_outcomes_none(review_rule):
    reviewed = register_event({"amount": 5000})
    approved = register_event({"amount": 10})

    case = ReviewCase.objects.get()
    assert case.decision_id == reviewed.pk
    assert case.status == ReviewCase.Status.OPEN
    assert case.opened_at == reviewed.decided_at
    assert not ReviewCase.objects.filter(decision=approved).exists()


def test_the_queue_is_ordered_by_age_or_by_risk(review_rule):
    oldest, middle, newest = open_case(), open_case(), open_case()
    ReviewCase.objects.filter(pk=middle.pk).update(risk_score=0.9)
    ReviewCase.objects.filter(pk=newest.pk).update(risk_score=0.4)

    by_age = [case.pk for case in review_selectors.review_case_list(ordering="age")]
    by_risk = [case.pk for case in review_selectors.review_case_list(ordering="risk")]

    assert by_age == [oldest.pk, middle.pk, newest.pk]
    assert by_risk == [middle.pk, newest.pk, oldest.pk]


def test_a_claim_keeps_others_out_until_it_expires(review_rule):
    case = open_case()
    first, second = person("analyst", username="ana"), person("analyst", username="ben")

    claimed = services.review_case_claim(case_id=case.pk, actor=first)
    with pytest.raises(ReviewCaseConflict, match="claimed by ana"):
        services.review_case_claim(case_id=case.pk, actor=second)
    with pytest.raises(ReviewCaseConflict):
        services.review_case_resolve(
            case_id=case.pk, resolution="approve", note="fine", actor=second
        )
    ReviewCase.objects.filter(pk=case.pk).update(claimed_until=timezone.now() - timedelta(1))
    taken = services.review_case_claim(case_id=case.pk, actor=second)

    assert claimed.claimed_by_label == "ana"
    assert taken.claimed_by_label == "ben"
    assert taken.claimed_until > timezone.now() + timedelta(minutes=14)
    assert list(
        AuditEntry.objects.filter(target_type="review_case")
        .order_by("id")
        .values_list("actor_label", "action")
    ) == [("ana", "review_case.claim"), ("ben", "review_case.claim")]


def test_a_resolution_sits_beside_the_decision_and_is_audited(review_rule):
    case = open_case()
    analyst = person("analyst")
    services.review_case_claim(case_id=case.pk, actor=analyst)

    resolved = services.review_case_resolve(
        case_id=case.pk, resolution="decline", note="  Salary does not match.  ", actor=analyst
    )

    resolved.decision.refresh_from_db()
    assert resolved.decision.outcome == "review"  # the engine's decision never changes
    assert (resolved.status, resolved.resolution, resolved.note) == (
        "resolved",
        "decline",
        "Salary does not match.",
    )
    entry = AuditEntry.objects.get(action="review_case.resolve")
    assert entry.after["resolution"] == "decline"
    assert replay_selectors.decision_replay(decision=resolved.decision)["matches"] is True
    with pytest.raises(ReviewCaseConflict, match="resolved already"):
        services.review_case_resolve(case_id=case.pk, resolution="approve", note="x", actor=analyst)


def test_a_resolution_needs_a_known_answer_and_a_note(review_rule):
    case = open_case()
    analyst = person("analyst")

    with pytest.raises(InvalidInput) as no_note:
        services.review_case_resolve(case_id=case.pk, resolution="approve", note=" ", actor=analyst)
    with pytest.raises(InvalidInput) as bad_answer:
        services.review_case_resolve(case_id=case.pk, resolution="maybe", note="x", actor=analyst)

    assert list(no_note.value.errors) == ["note"]
    assert list(bad_answer.value.errors) == ["resolution"]
    assert ReviewCase.objects.get(pk=case.pk).status == "open"
    assert not AuditEntry.objects.filter(target_type="review_case").exists()


def test_the_queue_stats_give_its_size_and_oldest_age(review_rule):
    assert review_selectors.review_queue_stats() == (0, 0.0)
    oldest = open_case()
    open_case()
    ReviewCase.objects.filter(pk=oldest.pk).update(opened_at=timezone.now() - timedelta(hours=1))

    size, age = review_selectors.review_queue_stats()
    panel = session_client(person("analyst")).get("/reviews/panel/")

    assert size == 2
    assert 3600 <= age < 3700
    assert "<strong>2</strong> open cases; the oldest has waited 1:00:" in panel.content.decode()


def test_the_case_page_shows_the_customers_earlier_decisions(review_rule):
    earlier = register_event({"amount": 10, "customer_id": "c-7"})
    register_event({"amount": 10, "customer_id": "someone-else"})
    case = open_case(customer="c-7")

    assert review_selectors.customer_earlier_decisions(decision=case.decision) == [earlier]


def test_the_case_page_shows_the_decisions_reasons(review_rule, staff_client):
    case = open_case(customer="c-9")
    [rule_reason] = [r for r in case.decision.reasons if r["kind"] == "rule"]
    page = staff_client.get(f"/reviews/{case.pk}/").content.decode()
    assert 'data-testid="reasons"' in page
    assert f"<code>{rule_reason['code']}</code> {rule_reason['text']}" in page


@pytest.mark.django_db(transaction=True)
def test_of_two_reviewers_claiming_at_once_exactly_one_wins():
    rule_with_version(condition="event.amount > 1000", outcome="review")
    case = open_case()
    reviewers = [person("analyst", username="ana"), person("analyst", username="ben")]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def claim(reviewer) -> None:
        try:
            barrier.wait(timeout=10)
            services.review_case_claim(case_id=case.pk, actor=reviewer)
            outcomes.append("won")
        except ReviewCaseConflict:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(reviewer,)) for reviewer in reviewers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["refused", "won"]
    assert AuditEntry.objects.filter(action="review_case.claim").count() == 1


# --- API -----------------------------------------------------------------------------------------


def test_the_api_lists_claims_and_resolves_with_its_scopes(review_rule, django_assert_num_queries):
    case, later = open_case(), open_case()
    reader, writer = key_client(Scope.REVIEWS_READ), key_client(Scope.REVIEWS_WRITE)

    with django_assert_num_queries(4):  # key, count, page with decision/event/rule, last use
        listed = reader.get("/api/v1/reviews/")
    refused = reader.post(f"/api/v1/reviews/{case.pk}/claim/")
    claimed = writer.post(f"/api/v1/reviews/{case.pk}/claim/")
    resolved = writer.post(
        f"/api/v1/reviews/{case.pk}/resolve/",
        {"resolution": "approve", "note": "Documents check out."},
        format="json",
    )

    assert listed.status_code == 200
    assert [row["id"] for row in listed.json()["results"]] == [case.pk, later.pk]
    assert listed.json()["results"][0]["engine_outcome"] == "review"
    assert refused.status_code == 403
    assert claimed.status_code == 200
    assert claimed.json()["claim_active"] is True
    assert resolved.status_code == 200
    assert resolved.json()["resolution"] == "approve"
    assert resolved.json()["resolved_by"].startswith("api-key:")


def test_the_api_refuses_a_case_another_holds_with_409(review_rule):
    case = open_case()
    services.review_case_claim(case_id=case.pk, actor=person("analyst"))
    writer = key_client(Scope.REVIEWS_WRITE)

    claim = writer.post(f"/api/v1/reviews/{case.pk}/claim/")
    resolve = writer.post(
        f"/api/v1/reviews/{case.pk}/resolve/", {"resolution": "decline", "note": "x"}, format="json"
    )
    bad = writer.post(f"/api/v1/reviews/{case.pk}/resolve/", {"resolution": "x"}, format="json")

    assert (claim.status_code, resolve.status_code, bad.status_code) == (409, 409, 400)
    assert claim["Content-Type"].startswith("application/problem+json")
    assert set(bad.json()["errors"]) == {"resolution", "note"}
    assert ReviewCase.objects.get(pk=case.pk).status == "open"


# --- Pages ---------------------------------------------------------------------------------------


def test_an_analyst_claims_and_resolves_on_the_case_page(review_rule, client):
    case = open_case()
    analyst = person("analyst")
    client.force_login(analyst)

    queue = client.get("/reviews/")
    page = client.get(f"/reviews/{case.pk}/")
    claimed = client.post(f"/reviews/{case.pk}/claim/", HTTP_HX_REQUEST="true")
    resolved = client.post(
        f"/reviews/{case.pk}/resolve/",
        {"resolution": "decline", "note": "Known mule account."},
        HTTP_HX_REQUEST="true",
    )

    assert f"/reviews/{case.pk}/" in queue.content.decode()
    assert 'data-testid="trace"' in page.content.decode()
    assert 'data-testid="claim"' in page.content.decode()
    assert 'data-testid="resolve-form"' in claimed.content.decode()
    assert "Known mule account." in resolved.content.decode()
    case.refresh_from_db()
    assert (case.status, case.resolution, case.resolved_by_label) == (
        "resolved",
        "decline",
        analyst.username,
    )
    decision_page = client.get(f"/decisions/{case.decision_id}/").content.decode()
    assert f'case #{case.pk}</a>: <span class="badge decline">decline</span>' in decision_page


def test_the_page_refuses_a_claim_to_whom_may_only_read(review_rule):
    case = open_case()
    client = session_client(person("compliance"))

    assert client.get(f"/reviews/{case.pk}/").status_code == 200
    assert client.post(f"/reviews/{case.pk}/claim/").status_code == 403
    assert ReviewCase.objects.get(pk=case.pk).claimed_by == ""
