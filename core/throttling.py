"""Request throttling for the API: per key, token or user, and per address for anonymous callers.

A fixed window per caller: one counter per (caller, window of the rate's duration), counted up
atomically in Django's cache (Redis when REDIS_URL is set, so every web process shares it).
DRF's SimpleRateThrottle keeps instead the list of every request time in the last window and
reads and rewrites it whole on each request: at 6,000/min that list is 6,000 floats, pickled
and sent to Redis and back per request (0.8 ms at 10,000, bench/http_load.py), and two
processes that read it at once each write their own copy back, one of the requests uncounted.
A fixed window can let through twice the rate across a window's edge; the rates are sized
with that in mind. A throttled request gets 429 problem details with Retry-After (the window's
end; see core.problems).
"""

import math
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
        num_requests, duration = self.parse_rate(self.rate)
        # Every API_THROTTLE_RATES entry is a rate ("6000/min"), never None.
        assert num_requests is not None
        assert duration is not None
        self.num_requests, self.duration = num_requests, duration
        self.now = self.timer()
        window = math.floor(self.now / duration)
        self.window_end = (window + 1) * duration
        key = f"{self.get_cache_key(request, view)}:{window}"
        return self._count_up(key, expires=duration + 1) <= num_requests

    def _count_up(self, key: str, *, expires: int) -> int:
        """This request's number in its window: one atomic increment (the first request of a
        window creates the counter, which expires with the window)."""
        try:
            return int(self.cache.incr(key))
        except ValueError:  # no counter yet
            if self.cache.add(key, 1, timeout=expires):
                return 1
            return int(self.cache.incr(key))  # another request created it first

    def wait(self) -> float:
        """Seconds until the window ends (Retry-After rounds it up to at least 1)."""
        return max(self.window_end - self.now, 0.001)

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
