"""Bench-only URLconf: the product's URLs plus a baseline endpoint, never served in production.

Only `bench/http_settings.py` (used by bench/http_load.py's gunicorn) points ROOT_URLCONF here.
"""

import json
from typing import Any

from django.db import connection
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import urlpatterns as product_urlpatterns
from core.access import Scope
from core.permissions import ScopeRequired

BASELINE_TABLE = "bench_baseline_insert"


class BaselineInsert(APIView):
    """A bare DRF endpoint: the same API-key authentication and JSON parsing, one INSERT."""

    permission_classes = [ScopeRequired]
    required_scopes = {"POST": Scope.EVENTS_WRITE}

    def post(self, request: Request) -> Response:
        body: Any = request.data
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {BASELINE_TABLE} (payload) VALUES (%s) RETURNING id",
                [json.dumps(body)],
            )
            (row_id,) = cursor.fetchone()
        return Response({"id": row_id}, status=201)


urlpatterns = [
    *product_urlpatterns,
    path("bench/baseline/", BaselineInsert.as_view(), name="bench_baseline"),
]
