"""HTMX pages of contacts (apart from the campaign pages' routes)."""

from django.urls import path

from campaigns import contact_views

app_name = "contacts"

urlpatterns = [
    path("contacts/", contact_views.contact_list_page, name="list"),
    path("contacts/import/", contact_views.contact_import_page, name="import"),
    path(
        "contacts/import/<int:job_id>/", contact_views.contact_import_job_partial, name="import-job"
    ),
    path("contacts/<int:contact_id>/", contact_views.contact_detail_page, name="detail"),
]
