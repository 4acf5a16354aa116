"""The HNSW (cosine) index on record embeddings, built concurrently so writes continue."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations
from pgvector.django import HnswIndex


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("records", "0001_add_prediction_record")]

    operations = [
        AddIndexConcurrently(
            model_name="predictionrecord",
            index=HnswIndex(
                name="record_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
        ),
    ]
