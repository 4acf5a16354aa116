"""The campaigns API: `serializers`, `examples` (OpenAPI data) and `views`; routed here."""

from rest_framework.routers import SimpleRouter

from campaigns.api.jobs import CampaignJobViewSet
from campaigns.api.templates import SmsTemplateViewSet
from campaigns.api.views import CampaignViewSet, ContactViewSet, MessageViewSet

router = SimpleRouter()
router.register("contacts", ContactViewSet, basename="contact")
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("messages", MessageViewSet, basename="message")
router.register("campaign-jobs", CampaignJobViewSet, basename="campaign-job")
router.register("sms-templates", SmsTemplateViewSet, basename="sms-template")

urlpatterns = router.urls
