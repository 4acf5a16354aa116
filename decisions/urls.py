"""HTMX pages of this app."""

app_name = "decisions"

urlpatterns: list = []
