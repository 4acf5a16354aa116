"""The overview's campaigns panel (apart from the campaign pages' own routes)."""

from django.urls import path

from campaigns import overview_views

app_name = "campaigns_overview"

urlpatterns = [
    path("overview/campaigns/", overview_views.campaign_overview_partial, name="panel"),
]
