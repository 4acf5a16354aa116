"""core serves no resources of its own under /api/v1/; apps register theirs."""

urlpatterns: list = []
