"""A URLconf for exercising the kernel's error and idempotency plumbing in isolation."""

from django.urls import include, path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from core.audit import audit_record
from core.errors import Conflict
from core.idempotency import idempotent_response


@api_view(["POST"])
@permission_classes([IsAuthenticated])
def echo(request: Request) -> Response:
    return Response({"received": request.data})


@api_view(["GET"])
@permission_classes([IsAuthenticated])
def explode(request: Request) -> Response:
    raise RuntimeError("boom")


@api_view(["GET"])
@permission_classes([IsAuthenticated])
def conflict(request: Request) -> Response:
    raise Conflict("The thing is already done.", errors={"state": ["Already done."]})


@api_view(["POST"])
@permission_classes([IsAuthenticated])
def create_note(request: Request) -> Response:
    """Writes an audit entry per call, so a test can count how many times the work ran."""

    def produce() -> tuple[int, dict]:
        if request.data.get("fail"):
            audit_record(actor=None, action="note.create", target_type="note", target_id="x")
            raise Conflict("Asked to fail after writing.")
        entry = audit_record(
            actor=None, action="note.create", target_type="note", target_id=request.data["text"]
        )
        return 201, {"entry_id": entry.pk, "text": request.data["text"]}

    return idempotent_response(request, produce, required=True)


urlpatterns = [
    path("api/test/echo/", echo),
    path("api/test/explode/", explode),
    path("api/test/conflict/", conflict),
    path("api/test/notes/", create_note),
    path("", include("config.urls")),
]
