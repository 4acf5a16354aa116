"""Four-eyes publishing: under a policy that requires it, a version goes live only once a person
other than its author approved it."""

import pytest
from django.urls import reverse

from core.access import Scope
from core.models import AuditEntry
from core.tests.identities import key_client, person, session_client
from decisions import services
from decisions.exceptions import ApprovalForbidden, ApprovalRequired, ApprovalStateConflict
from decisions.models import RuleVersion, RuleVersionApproval
from decisions.tests.factories import rule_with_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def four_eyes():
    return services.policy_save(
        event_type="loan_application",
        strategy="first_match",
        default_outcome="approve",
        requires_approval=True,
    )


@pytest.fixture
def editor():
    return person("rule editor", username="editor")


@pytest.fixture
def approver():
    return person("rule approver", username="approver")


def test_an_unapproved_version_cannot_be_published_under_four_eyes(four_eyes, editor):
    draft = rule_with_version(status="draft", actor=editor)

    with pytest.raises(ApprovalRequired) as refused:
        services.rule_version_publish(version=draft, actor=editor)

    assert refused.value.status == 409
    assert "approval" in refused.value.detail
    draft.refresh_from_db()
    assert draft.status == RuleVersion.Status.DRAFT
    assert not AuditEntry.objects.filter(action="rule_version.publish").exists()


def test_a_rule_approver_approves_a_version_written_by_someone_else(four_eyes, editor, approver):
    draft = rule_with_version(status="draft", actor=editor)

    services.rule_version_approval_request(version=draft, actor=editor, note="Lower threshold.")
    approval = services.rule_version_approve(version=draft, actor=approver, note="Checked.")
    published = services.rule_version_publish(version=draft, actor=editor)

    assert approval.status == RuleVersionApproval.Status.APPROVED
    assert (approval.requested_by, approval.decided_by) == (editor, approver)
    assert published.status == RuleVersion.Status.PUBLISHED
    actions = list(
        AuditEntry.objects.filter(target_id=f"{draft.rule.key}:{draft.number}")
        .order_by("id")
        .values_list("action", "actor_label")
    )
    assert actions[-3:] == [
        ("rule_version.approval_request", "editor"),
        ("rule_version.approve", "approver"),
        ("rule_version.publish", "editor"),
    ]


def test_an_approver_cannot_approve_their_own_version(four_eyes):
    author = person("rule editor", "rule approver", username="both")
    draft = rule_with_version(status="draft", actor=author)
    services.rule_version_approval_request(version=draft, actor=author)

    with pytest.raises(ApprovalForbidden):
        services.rule_version_approve(version=draft, actor=author)

    assert draft.approvals.get().status == RuleVersionApproval.Status.REQUESTED
    assert not AuditEntry.objects.filter(action="rule_version.approve").exists()


def test_an_editor_without_the_approver_role_cannot_approve(four_eyes, editor):
    draft = rule_with_version(status="draft")
    services.rule_version_approval_request(version=draft, actor=editor)

    with pytest.raises(ApprovalForbidden):
        services.rule_version_approve(version=draft, actor=editor)

    assert draft.approvals.get().status == RuleVersionApproval.Status.REQUESTED


def test_a_rejected_version_stays_unpublishable_until_approved_on_a_new_request(
    four_eyes, editor, approver
):
    draft = rule_with_version(status="draft", actor=editor)
    services.rule_version_approval_request(version=draft, actor=editor)

    services.rule_version_reject(version=draft, actor=approver, note="Too broad.")
    with pytest.raises(ApprovalRequired):
        services.rule_version_publish(version=draft, actor=editor)
    with pytest.raises(ApprovalStateConflict):
        services.rule_version_approve(version=draft, actor=approver)
    services.rule_version_approval_request(version=draft, actor=editor)
    services.rule_version_approve(version=draft, actor=approver)

    assert services.rule_version_publish(version=draft, actor=editor).status == "published"
    assert list(draft.approvals.values_list("status", flat=True)) == ["approved", "rejected"]


def test_a_second_open_request_is_refused(four_eyes, editor):
    draft = rule_with_version(status="draft", actor=editor)
    services.rule_version_approval_request(version=draft, actor=editor)

    with pytest.raises(ApprovalStateConflict):
        services.rule_version_approval_request(version=draft, actor=editor)

    assert draft.approvals.count() == 1


def test_a_rollback_under_four_eyes_needs_an_approved_source(four_eyes, editor, approver):
    never_approved = rule_with_version(status="draft", actor=editor)
    services.rule_version_retire(version=never_approved, actor=editor)

    with pytest.raises(ApprovalRequired):
        services.rule_version_rollback(version=never_approved, actor=editor)

    assert never_approved.rule.versions.count() == 1


def test_publishing_without_four_eyes_needs_no_approval(editor):
    draft = rule_with_version(status="draft", actor=editor)

    assert services.rule_version_publish(version=draft, actor=editor).status == "published"


def test_only_a_rule_approver_can_turn_four_eyes_off(four_eyes, editor, approver):
    def turn_off(actor):
        services.policy_save(
            event_type="loan_application",
            strategy="first_match",
            default_outcome="approve",
            requires_approval=False,
            actor=actor,
        )
        four_eyes.refresh_from_db()

    with pytest.raises(ApprovalForbidden):
        turn_off(editor)
    four_eyes.refresh_from_db()
    assert four_eyes.requires_approval is True

    turn_off(approver)
    assert four_eyes.requires_approval is False


# --- Through the API and the admin ---------------------------------------------------------------


def test_the_api_requests_and_answers_approvals(four_eyes, editor, approver):
    draft = rule_with_version(status="draft", actor=editor)
    base = f"/api/v1/rules/{draft.rule.key}/versions/{draft.number}"

    refused = session_client(editor).post(f"{base}/publish/")
    requested = session_client(editor).post(f"{base}/request-approval/", {"note": "Please."})
    by_key = key_client(*Scope, name="every-scope").post(f"{base}/approve/")
    approved = session_client(approver).post(f"{base}/approve/", {"note": "Fine."})
    published = session_client(editor).post(f"{base}/publish/")

    assert refused.status_code == 409
    assert refused.json()["code"] == "approval_required"
    assert requested.status_code == 200
    assert requested.json()["approval"]["status"] == "requested"
    assert by_key.status_code == 403  # a key never approves, whatever its scopes
    assert approved.status_code == 200
    assert approved.json()["approval"]["decided_by_label"] == "approver"
    assert published.json()["status"] == "published"


def test_the_api_refuses_an_approval_by_the_author(four_eyes):
    author = person("rule editor", "rule approver", username="both")
    draft = rule_with_version(status="draft", actor=author)
    client = session_client(author)
    base = f"/api/v1/rules/{draft.rule.key}/versions/{draft.number}"
    client.post(f"{base}/request-approval/")

    response = client.post(f"{base}/approve/")

    assert response.status_code == 403
    assert response.json()["code"] == "approval_forbidden"
    assert draft.approvals.get().status == "requested"


def test_the_admin_shows_approval_buttons_to_an_approver_and_approves(
    client, four_eyes, editor, approver
):
    draft = rule_with_version(status="draft", actor=editor)
    services.rule_version_approval_request(version=draft, actor=editor)
    change = reverse("admin:decisions_rule_change", args=[draft.rule_id])
    approve = reverse(
        "admin:decisions_rule_transition", args=[draft.rule_id, draft.number, "approve"]
    )

    client.force_login(editor)
    editor_page = client.get(change).content.decode()
    refused = client.post(approve)
    client.force_login(approver)
    approver_page = client.get(change).content.decode()
    approved = client.post(approve)

    assert f'data-testid="approve-{draft.number}"' not in editor_page
    assert refused.status_code == 403
    assert f'data-testid="approve-{draft.number}"' in approver_page
    assert f'data-testid="publish-{draft.number}"' not in approver_page
    assert approved.status_code == 302
    assert draft.approvals.get().status == "approved"
