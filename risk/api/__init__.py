"""The model registry API: models, versions, metrics and the feature schemas of forms.

`serializers` holds the wire shapes, `examples` the OpenAPI examples, `views` the handlers;
this module routes them (config/urls.py includes it).
"""

from rest_framework.routers import SimpleRouter

from risk.api.views import RiskModelViewSet

router = SimpleRouter()
router.register("models", RiskModelViewSet, basename="model")

urlpatterns = router.urls
