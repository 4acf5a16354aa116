"""HTMX pages of this app."""

from django.urls import path

from records import views

app_name = "records"

urlpatterns = [
    path("predict/", views.predict, name="predict"),
    path("records/", views.record_index, name="list"),
    path("records/panel/", views.records_panel, name="panel"),
    path("records/<int:record_id>/", views.record_detail, name="detail"),
    path("records/<int:record_id>/similar/", views.record_similar, name="similar"),
]
