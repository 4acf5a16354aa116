"""HTMX pages of this app."""

from django.urls import path

from decisions import views

app_name = "decisions"

urlpatterns = [
    path("decisions/", views.decision_list_page, name="list"),
    path("decisions/panel/", views.decision_panel_partial, name="panel"),
    path("decisions/<int:decision_id>/", views.decision_detail_page, name="detail"),
    path("decisions/<int:decision_id>/replay/", views.decision_replay_partial, name="replay"),
]
