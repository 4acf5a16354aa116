"""HTMX pages of this app."""

from django.urls import path

from records import views

app_name = "records"

urlpatterns = [
    path("predict/", views.record_predict_page, name="predict"),
    path("records/", views.record_list_page, name="list"),
    path("records/export.csv", views.record_export_csv, name="export"),
    path("records/panel/", views.record_panel_partial, name="panel"),
    path("drift/", views.drift_page, name="drift"),
    path("records/<int:record_id>/", views.record_detail_page, name="detail"),
    path("records/<int:record_id>/similar/", views.record_similar_partial, name="similar"),
]
