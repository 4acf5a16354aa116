"""HTMX pages of this app."""

app_name = "campaigns"

urlpatterns: list = []
