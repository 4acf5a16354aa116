"""Domain errors of the model registry and scoring."""

from core.errors import InvalidInput, NotFound


class ModelNotFound(NotFound):
    code = "model_not_found"
    title = "Model not found"


class InvalidFeatures(InvalidInput):
    code = "invalid_features"
    title = "Invalid features"


class InvalidArtifact(InvalidInput):
    code = "invalid_artifact"
    title = "Invalid model artifact"
