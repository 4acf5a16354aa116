"""A model's records newest first with the id tie-break, and a model's scores: the records list
filtered by model and score range read every newer row of every model (90,189 rows for 50 at
100,000 records, docs/benchmarks); now it reads the model's rows in order, and its count reads
the matching index entries. Built concurrently; reversible."""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("records", "0005_record_created_cover_index")]

    operations = [
        AddIndexConcurrently(
            model_name="predictionrecord",
            index=models.Index(
                fields=["model_id", "-created_at", "-id"], name="record_model_newest_idx"
            ),
        ),
        AddIndexConcurrently(
            model_name="predictionrecord",
            index=models.Index(fields=["model_id", "risk_score"], name="record_model_score_idx"),
        ),
        RemoveIndexConcurrently(model_name="predictionrecord", name="record_model_created_idx"),
    ]
