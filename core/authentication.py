"""How machines authenticate: `Authorization: Api-Key <key>`, or a JWT bearer token from the
customer's own identity provider. Either way the principal carries the scopes it was granted."""

from datetime import timedelta
from typing import Any, cast

import jwt
from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from rest_framework import authentication, exceptions

from core.access import ALL_SCOPES
from core.models import ApiKey
from core.principals import ApiClient, client_scope
from core.throttling import address_throttle_check

__all__ = ["ApiClient", "ApiKeyAuthentication", "JwtAuthentication", "client_scope"]

KEYWORD = "Api-Key"
BEARER = "Bearer"
# A key's last use is written at most this often, so a busy key costs no write per request.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def _key_used(api_key: ApiKey) -> None:
    """Record the key's use, at most once a minute (the row was just read, so no query then)."""
    now = timezone.now()
    if api_key.last_used_at is not None and now - api_key.last_used_at < LAST_USED_RESOLUTION:
        return
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now


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
            address_throttle_check(request)  # guessing keys costs the address its rate
            raise exceptions.AuthenticationFailed("The API key is not valid.") from None
        if api_key.has_expired or api_key.revoked:
            address_throttle_check(request)
            raise exceptions.AuthenticationFailed("The API key is revoked or expired.")
        _key_used(api_key)
        client = ApiClient(name=api_key.name, scopes=frozenset(api_key.scopes), api_key=api_key)
        return client, api_key

    def authenticate_header(self, request: HttpRequest) -> str:
        return KEYWORD


class JwtAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <JWT>` signed by the customer's identity provider (PyJWT).

    Issuer, audience and keys come from settings (a JWKS URL or a PEM public key); the scopes
    are the token's space-separated `scope` claim, limited to the scopes this product knows.
    Off unless JWT_ISSUER is set.
    """

    def authenticate(self, request: HttpRequest) -> tuple[ApiClient, None] | None:
        keyword, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if keyword != BEARER or not settings.JWT_ISSUER:
            return None
        try:
            claims = jwt.decode(
                token.strip(),
                key=_signing_key(token.strip()),
                algorithms=settings.JWT_ALGORITHMS,
                audience=settings.JWT_AUDIENCE,
                issuer=settings.JWT_ISSUER,
                leeway=settings.JWT_LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as error:
            problem = f"The bearer token is not valid: {error}."
            raise exceptions.AuthenticationFailed(problem) from None
        scopes = frozenset(str(claims.get("scope", "")).split()) & ALL_SCOPES
        subject = str(claims["sub"])
        client = ApiClient(
            name=str(claims.get("client_id", subject)),
            scopes=scopes,
            token_subject=subject,
            claims=claims,
        )
        return client, None

    def authenticate_header(self, request: HttpRequest) -> str:
        return BEARER


_jwks_client: jwt.PyJWKClient | None = None


def _signing_key(token: str) -> Any:
    if settings.JWT_PUBLIC_KEY:
        return settings.JWT_PUBLIC_KEY
    global _jwks_client
    if _jwks_client is None or _jwks_client.uri != settings.JWT_JWKS_URL:
        _jwks_client = jwt.PyJWKClient(settings.JWT_JWKS_URL, cache_keys=True, timeout=5)
    return _jwks_client.get_signing_key_from_jwt(token).key
