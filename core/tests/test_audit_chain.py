"""The audit trail cannot be quietly changed: append-only in the database, hash-chained."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from core.audit import audit_chain_verify, audit_record
from core.models import AuditEntry

pytestmark = pytest.mark.django_db


def record(action: str, **fields):
    with transaction.atomic():
        return audit_record(actor=None, action=action, target_type="rule", target_id=1, **fields)


def test_each_entry_carries_the_hash_of_the_one_before():
    first = record("rule.create", after={"b": 1, "a": [1.5, "é"]})
    second = record("rule.update", before={"a": 1}, after={"a": 2})

    assert second.previous_hash == first.entry_hash
    assert len(first.entry_hash) == 64
    assert audit_chain_verify() == (AuditEntry.objects.count(), None)


@pytest.mark.parametrize("statement", ["UPDATE", "DELETE"])
def test_the_database_refuses_to_change_or_delete_an_entry(statement):
    entry = record("rule.create")
    sql = {
        "UPDATE": "UPDATE core_auditentry SET action = 'rule.forged' WHERE id = %s",
        "DELETE": "DELETE FROM core_auditentry WHERE id = %s",
    }[statement]

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        connection.cursor().execute(sql, [entry.pk])

    assert AuditEntry.objects.get(pk=entry.pk).action == "rule.create"


def test_audit_verify_names_the_first_entry_a_forger_changed():
    record("rule.create")
    forged = record("rule.publish", after={"status": "published"})
    record("rule.retire")
    with connection.cursor() as cursor:  # a forger with the database owner's rights
        cursor.execute("ALTER TABLE core_auditentry DISABLE TRIGGER core_audit_append_only")
        cursor.execute(
            'UPDATE core_auditentry SET after = \'{"status": "draft"}\' WHERE id = %s',
            [forged.pk],
        )
        cursor.execute("ALTER TABLE core_auditentry ENABLE TRIGGER core_audit_append_only")

    with pytest.raises(CommandError, match=f"Audit entry {forged.pk} its content does not match"):
        call_command("audit_verify")


def test_audit_verify_reports_an_intact_trail(capsys):
    record("rule.create")

    call_command("audit_verify")

    assert "Audit trail intact" in capsys.readouterr().out


def test_deleting_a_user_keeps_their_entries_and_name():
    user = get_user_model().objects.create_user(username="leaver", password="x-pass-1234567")
    with transaction.atomic():
        entry = audit_record(actor=user, action="rule.create", target_type="rule", target_id=9)

    user.delete()

    kept = AuditEntry.objects.get(pk=entry.pk)
    assert kept.actor_label == "leaver"
    assert audit_chain_verify()[1] is None
