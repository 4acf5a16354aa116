"""`Authorization: Api-Key <key>` authentication for integrators."""

from dataclasses import dataclass
from typing import cast

from django.http import HttpRequest
from rest_framework import authentication, exceptions

from core.models import ApiKey

KEYWORD = "Api-Key"


@dataclass(frozen=True)
class ApiClient:
    """The principal behind an API key; it quacks enough like a user for DRF permissions."""

    api_key: ApiKey
    is_authenticated: bool = True
    is_anonymous: bool = False
    is_staff: bool = False

    @property
    def pk(self) -> str:
        # Logged as user_id: the key's public prefix, never its hash.
        return f"api-key:{self.api_key.prefix}"

    @property
    def username(self) -> str:
        return f"api-key:{self.api_key.name}"

    def __str__(self) -> str:
        return self.username


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Looks the key up by its prefix, checks its hash, refuses revoked or expired keys."""

    def authenticate(self, request: HttpRequest) -> tuple[ApiClient, ApiKey] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        keyword, _, raw_key = header.partition(" ")
        if keyword != KEYWORD:
            return None
        raw_key = raw_key.strip()
        if not raw_key:
            raise exceptions.AuthenticationFailed("The Api-Key header carries no key.")
        try:
            api_key = cast(ApiKey, ApiKey.objects.get_from_key(raw_key))
        except ApiKey.DoesNotExist:
            raise exceptions.AuthenticationFailed("The API key is not valid.") from None
        if api_key.has_expired or api_key.revoked:
            raise exceptions.AuthenticationFailed("The API key is revoked or expired.")
        return ApiClient(api_key=api_key), api_key

    def authenticate_header(self, request: HttpRequest) -> str:
        return KEYWORD


def client_scope(user: object) -> str:
    """A stable identifier of the caller, for per-client idempotency keys and audit labels."""
    if isinstance(user, ApiClient):
        return f"key:{user.api_key.prefix}"
    return f"user:{getattr(user, 'pk', 'anonymous')}"
