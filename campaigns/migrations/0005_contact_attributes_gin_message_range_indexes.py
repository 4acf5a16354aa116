"""Indexes for the pages at 100,000 rows: contacts by attribute, the overview's message funnel
and send rate. Built concurrently (no lock on writes); reversible."""

import django.contrib.postgres.indexes
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("campaigns", "0004_merge_erasure_and_templates")]

    operations = [
        AddIndexConcurrently(
            model_name="contact",
            index=django.contrib.postgres.indexes.GinIndex(
                fields=["attributes"], name="contact_attributes_gin", opclasses=["jsonb_path_ops"]
            ),
        ),
        AddIndexConcurrently(
            model_name="message",
            index=models.Index(
                fields=["created_at"],
                include=["status", "queued_at", "sent_at"],
                name="message_created_cover_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="message",
            index=models.Index(
                condition=models.Q(("sent_at__isnull", False)),
                fields=["sent_at"],
                name="message_sent_idx",
            ),
        ),
    ]
