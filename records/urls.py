"""HTMX pages of this app."""

app_name = "records"

urlpatterns: list = []
