"""Predict, browse records, and find similar cases: /predict/ and /records/ under /api/v1/.

`serializers` holds the wire shapes, `examples` the OpenAPI examples, `views` the handlers;
this module routes them (config/urls.py includes it).
"""

from django.urls import path
from rest_framework.routers import SimpleRouter

from records.api.views import PredictView, RecordViewSet

router = SimpleRouter()
router.register("records", RecordViewSet, basename="record")

urlpatterns = [path("predict/", PredictView.as_view(), name="predict"), *router.urls]
