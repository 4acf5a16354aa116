"""HTMX pages of this app."""

from django.urls import path

from decisions import views

app_name = "decisions"

urlpatterns = [
    path("decisions/", views.decision_list_page, name="list"),
    path("decisions/panel/", views.decision_panel_partial, name="panel"),
    path("decisions/<int:decision_id>/", views.decision_detail_page, name="detail"),
    path("decisions/<int:decision_id>/replay/", views.decision_replay_partial, name="replay"),
    path("reviews/", views.review_queue_page, name="reviews"),
    path("reviews/panel/", views.review_panel_partial, name="reviews_panel"),
    path("reviews/<int:case_id>/", views.review_case_page, name="review"),
    path("reviews/<int:case_id>/claim/", views.review_case_claim_partial, name="review_claim"),
    path(
        "reviews/<int:case_id>/resolve/", views.review_case_resolve_partial, name="review_resolve"
    ),
]
