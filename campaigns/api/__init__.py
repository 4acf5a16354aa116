"""The campaigns API: `serializers`, `examples` (OpenAPI data) and `views`; routed here."""

from rest_framework.routers import SimpleRouter

from campaigns.api.views import CampaignViewSet, ContactViewSet, MessageViewSet

router = SimpleRouter()
router.register("contacts", ContactViewSet, basename="contact")
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("messages", MessageViewSet, basename="message")

urlpatterns = router.urls
