"""Request throttling for the API: per key, token or user, and per address for anonymous callers.

Counters live in Django's cache: Redis when REDIS_URL is set, so every web process shares them.
A throttled request gets 429 problem details with Retry-After (see core.problems).
"""

from typing import TYPE_CHECKING, Any

from django.conf import settings
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

if TYPE_CHECKING:  # rest_framework.views imports the throttle classes named in settings
    from rest_framework.views import APIView
else:
    APIView = Any

from core.principals import client_scope


class ClientRateThrottle(SimpleRateThrottle):
    """API_THROTTLE_RATES['client'] per authenticated caller, ['anonymous'] per address."""

    def __init__(self) -> None:
        # The rate is chosen per request (who is asking), so SimpleRateThrottle's own
        # constructor, which reads one fixed scope, is not used.
        pass

    def allow_request(self, request: Request, view: APIView) -> bool:
        authenticated = request.user and request.user.is_authenticated
        return self._allow(request, view, scope="client" if authenticated else "anonymous")

    def allow_address(self, request: Any) -> bool:
        """For a caller not (yet) authenticated: count it against its address."""
        return self._allow(request, None, scope="anonymous")

    def _allow(self, request: Any, view: Any, *, scope: str) -> bool:
        self.scope = scope
        self.rate = settings.API_THROTTLE_RATES[scope]
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request: Request, view: APIView) -> str:
        client = self.scope == "client"
        ident = client_scope(request.user) if client else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


def address_throttle_check(request: Any) -> None:
    """Raise 429 once an address has made too many unauthenticated or wrongly keyed requests;
    DRF checks throttles only after permissions, which an anonymous caller never passes."""
    throttle = ClientRateThrottle()
    if not throttle.allow_address(request):
        raise Throttled(wait=throttle.wait())
