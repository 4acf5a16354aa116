"""The decisions API (events, decisions, rules, backtests, reviews, lists, policies) under
/api/v1/; config/urls.py includes this package's `urlpatterns`.

`serializers` says what goes in and out, `examples` holds the OpenAPI example data, `views` the
viewsets.
"""

from rest_framework.routers import SimpleRouter

from decisions.api.catalog import NamedListViewSet, PolicyViewSet
from decisions.api.reviews import ReviewViewSet
from decisions.api.views import (
    BacktestViewSet,
    DecisionViewSet,
    EventViewSet,
    RuleViewSet,
    VelocityAggregateViewSet,
)

router = SimpleRouter()
router.register("events", EventViewSet, basename="event")
router.register("decisions", DecisionViewSet, basename="decision")
router.register("rules", RuleViewSet, basename="rule")
router.register("backtests", BacktestViewSet, basename="backtest")
router.register("reviews", ReviewViewSet, basename="review")
router.register("lists", NamedListViewSet, basename="named-list")
router.register("policies", PolicyViewSet, basename="policy")
router.register("velocity-aggregates", VelocityAggregateViewSet, basename="velocity-aggregate")

urlpatterns = router.urls
