"""HTMX pages of this app."""

app_name = "risk"

urlpatterns: list = []
