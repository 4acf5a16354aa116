"""Wiring: pages, the API under /api/v1/, its schema and docs, admin, health and metrics."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core.accounts import LoginForm, two_factor
from core.health import HealthzView
from core.metrics import metrics
from core.views import dashboard_page

handler400 = "core.problems.bad_request"
handler403 = "core.problems.permission_denied"
handler404 = "core.problems.not_found"
handler500 = "core.problems.server_error"

api_v1 = [
    path("", include("core.api")),
    path("", include("decisions.api")),
    path("", include("risk.api")),
    path("", include("records.api")),
    path("", include("campaigns.api")),
]

urlpatterns = [
    path("", dashboard_page, name="dashboard"),
    # One form: user name, password and, once a second factor is enrolled, its code.
    path(
        "login/",
        auth_views.LoginView.as_view(authentication_form=LoginForm),
        name="login",
    ),
    path("account/two-factor/", two_factor, name="two_factor"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path("healthz", HealthzView.as_view(), name="healthz"),
    path("healthz/", HealthzView.as_view(), name="healthz_slash"),
    path("metrics", metrics, name="metrics"),
    path("", include("decisions.urls")),
    path("", include("decisions.rule_urls")),
    path("", include("records.urls")),
    path("", include("campaigns.urls")),
    path("", include("campaigns.contact_urls")),
    path("", include("campaigns.overview_urls")),
]
