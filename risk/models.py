"""The model registry: risk models, their immutable versions and the one in production."""

from django.db import models
from django.db.models import Q

# The embedding stored with each prediction record has this many dimensions (pgvector column).
EMBEDDING_DIMENSIONS = 384


class RiskModel(models.Model):
    """A named scoring model (e.g. `credit-default`); its versions carry the artifacts."""

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class ModelVersion(models.Model):
    """One trained artifact of a model: skops bytes, feature schema, thresholds, metrics, stage."""

    class Stage(models.TextChoices):
        STAGING = "staging"
        PRODUCTION = "production"
        ARCHIVED = "archived"

    model = models.ForeignKey(RiskModel, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.STAGING)
    artifact = models.BinaryField(help_text="The scikit-learn pipeline saved with skops.")
    artifact_sha256 = models.CharField(max_length=64)
    feature_schema = models.JSONField(help_text="List of features: name, type, range, values.")
    label_thresholds = models.JSONField(help_text="Ascending [[label, upper bound], ...].")
    metrics = models.JSONField(default=dict, blank=True)
    dataset_fingerprint = models.CharField(max_length=64, blank=True, default="")
    encoded_baseline = models.JSONField(
        default=list,
        blank=True,
        help_text="Mean encoded training row; drivers are measured from it (empty: zeros).",
    )
    reference_distribution = models.JSONField(
        default=dict,
        blank=True,
        help_text="Training distribution of each feature and of the score (bins and shares), "
        "the reference of drift measurements; empty: not known.",
    )
    embedding_source_dimensions = models.PositiveIntegerField(
        help_text="Width of the preprocessed feature vector before zero-padding to 384."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    promoted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["model__key", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["model", "version"], name="risk_version_unique"),
            # Exactly one production version per model, whatever the code path.
            models.UniqueConstraint(
                fields=["model"],
                condition=Q(stage="production"),
                name="risk_one_production_version",
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="risk_version_positive"),
            models.CheckConstraint(
                condition=Q(stage__in=["staging", "production", "archived"]),
                name="risk_version_stage_valid",
            ),
            models.CheckConstraint(
                condition=Q(embedding_source_dimensions__gte=1)
                & Q(embedding_source_dimensions__lte=EMBEDDING_DIMENSIONS),
                name="risk_version_embedding_fits",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model.key} v{self.version} ({self.stage})"
