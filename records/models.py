"""Prediction records: every score ever computed, with its drivers and a searchable embedding."""

from django.contrib.postgres.indexes import OpClass
from django.db import models
from django.db.models import Q
from django.db.models.functions import Cast
from pgvector.django import HalfVectorField, HnswIndex, VectorField

EMBEDDING_DIMENSIONS = 384
# The embedding in half precision: what the HNSW index holds and nearest-neighbour searches
# order by (the expression must be the index's own for the planner to use it).
EMBEDDING_HALF = Cast("embedding", HalfVectorField(dimensions=EMBEDDING_DIMENSIONS))


class PredictionRecord(models.Model):
    """One scored applicant: features, score, label, drivers and the model's view as a vector."""

    class Source(models.TextChoices):
        API = "api"
        FORM = "form"
        DECISION = "decision"
        BACKFILL = "backfill"

    created_at = models.DateTimeField(auto_now_add=True)
    model_id = models.CharField(max_length=64, help_text="The risk model's key.")
    model_version = models.PositiveIntegerField()
    features = models.JSONField()
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS)
    risk_score = models.FloatField()
    risk_label = models.CharField(max_length=32)
    drivers = models.JSONField(help_text="[{feature, value, contribution}] by |contribution|.")
    base_logit = models.FloatField(
        null=True,
        blank=True,
        help_text="Log-odds of the average applicant; plus the contributions: the record's logit.",
    )
    source = models.CharField(max_length=16, choices=Source.choices)
    # A plain id, not a foreign key: records must not depend on the decisions app.
    event_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    # Back-filled rows carry their CSV id or row fingerprint, so a re-run imports nothing twice.
    external_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001 (NULL: not back-filled)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # A model's records newest first with the list's tie-break, so a filtered page reads
            # only that model's rows in order (with the score or label tested on each row)
            # instead of every newer row of every model (0006).
            models.Index(fields=["model_id", "-created_at", "-id"], name="record_model_newest_idx"),
            # Counting a model's records in a score range reads the matching entries alone.
            models.Index(fields=["model_id", "risk_score"], name="record_model_score_idx"),
            # Newest first with a unique tie-break (the list's order), and the columns the
            # overview's predictions panel counts, so it reads this index alone.
            models.Index(
                fields=["-created_at", "-id"],
                include=["risk_label", "risk_score"],
                name="record_created_cover_idx",
            ),
            models.Index(fields=["risk_label", "-created_at"], name="record_label_created_idx"),
            models.Index(fields=["risk_score"], name="record_score_idx"),
            models.Index(fields=["source", "-created_at"], name="record_source_created_idx"),
            # On the embedding in half precision (0007; record_nearest orders by the same
            # expression): inserts cost ~45 % less and the index is 40 % smaller than on the
            # full-precision vector, recall@10 unchanged (docs/benchmarks, "HNSW options").
            HnswIndex(
                OpClass(EMBEDDING_HALF, name="halfvec_cosine_ops"),
                name="record_embedding_half_hnsw",
                m=16,
                ef_construction=64,
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["model_id", "external_id"],
                condition=Q(external_id__isnull=False),
                name="record_unique_external_id",
            ),
            models.CheckConstraint(
                condition=Q(risk_score__gte=0) & Q(risk_score__lte=1), name="record_score_range"
            ),
            models.CheckConstraint(
                condition=Q(source__in=["api", "form", "decision", "backfill"]),
                name="record_source_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.model_id} v{self.model_version} {self.risk_label}"


class DriftMeasurement(models.Model):
    """The population stability index of one feature (or of the score) of one model version,
    over one window of its prediction records, against the version's training reference."""

    model_id = models.CharField(max_length=64, help_text="The risk model's key.")
    model_version = models.PositiveIntegerField()
    # A feature's name, or "(score)" for the score (risk.drift.SCORE).
    feature = models.CharField(max_length=64)
    psi = models.FloatField()
    sample_size = models.PositiveIntegerField()
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    measured_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model_id", "-model_version", "-window_end", "feature"]
        indexes = [
            models.Index(
                fields=["model_id", "model_version", "-window_end"], name="drift_version_window_idx"
            )
        ]
        constraints = [
            models.CheckConstraint(condition=Q(psi__gte=0), name="drift_psi_not_negative"),
            models.CheckConstraint(
                condition=Q(window_start__lt=models.F("window_end")), name="drift_window_ordered"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model_id} v{self.model_version} {self.feature}: {self.psi:.3f}"
