"""The newest-first index gets the id tie-break and covers the predictions panel's columns
(index-only scans at 100,000 records). Built concurrently; reversible."""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("records", "0004_add_drift_measurements")]

    operations = [
        AddIndexConcurrently(
            model_name="predictionrecord",
            index=models.Index(
                fields=["-created_at", "-id"],
                include=["risk_label", "risk_score"],
                name="record_created_cover_idx",
            ),
        ),
        RemoveIndexConcurrently(model_name="predictionrecord", name="record_created_idx"),
    ]
