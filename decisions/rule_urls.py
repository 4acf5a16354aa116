"""The rule editor's pages: rules per event type, backtests of drafts."""

from django.urls import path

from decisions import rule_views

app_name = "rules"

urlpatterns = [
    path("rules/", rule_views.rules_index_page, name="index"),
    path("rules/backtests/new/", rule_views.backtest_new_page, name="backtest_new"),
    path("rules/backtests/<int:backtest_id>/", rule_views.backtest_page, name="backtest"),
    path("rules/<str:event_type>/", rule_views.rules_page, name="page"),
]
