"""Domain errors of prediction records."""

from core.errors import NotFound


class RecordNotFound(NotFound):
    code = "record_not_found"
    title = "Record not found"
