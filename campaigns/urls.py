"""HTMX pages and the Twilio webhooks of this app."""

from django.urls import path

from campaigns import campaign_form_views, views, webhooks

app_name = "campaigns"

urlpatterns = [
    path("campaigns/", views.campaign_list_page, name="list"),
    path("campaigns/new/", campaign_form_views.campaign_create_page, name="create"),
    path(
        "campaigns/live/segment-count/",
        campaign_form_views.campaign_segment_count_partial,
        name="segment-count",
    ),
    path(
        "campaigns/live/message-preview/",
        campaign_form_views.campaign_message_preview_partial,
        name="message-preview",
    ),
    path("campaigns/<int:campaign_id>/", views.campaign_detail_page, name="detail"),
    path("campaigns/<int:campaign_id>/edit/", campaign_form_views.campaign_edit_page, name="edit"),
    path(
        "campaigns/<int:campaign_id>/exclusions/",
        views.campaign_exclusions_partial,
        name="exclusions",
    ),
    path("campaigns/<int:campaign_id>/charts/", views.campaign_charts_partial, name="charts"),
    path("campaigns/<int:campaign_id>/preview/", views.campaign_preview_partial, name="preview"),
    path(
        "campaigns/<int:campaign_id>/preview/<int:job_id>/",
        views.campaign_preview_job_partial,
        name="preview-job",
    ),
    path("campaigns/<int:campaign_id>/stats/", views.campaign_stats_partial, name="stats"),
    path("campaigns/<int:campaign_id>/launch/", views.campaign_launch_partial, name="launch"),
    path(
        "campaigns/<int:campaign_id>/<str:operation>/",
        views.campaign_operate_partial,
        name="operate",
    ),
    path("webhooks/twilio/inbound/", webhooks.inbound_webhook, name="webhook-inbound"),
    path("webhooks/twilio/status/", webhooks.status_webhook, name="webhook-status"),
]
