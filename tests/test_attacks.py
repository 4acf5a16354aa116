"""The attack suite, core's part: credentials that must not work, and scopes that must hold.

The rest of the suite lives where the code it attacks lives; docs/security.md lists every attack
with the test that proves it (20 wrong passwords, a key over its rate, a forged audit chain, ...).
"""

import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from core.access import Scope
from core.models import ApiKey
from core.permissions import ScopeRequired
from core.problems import PROBLEM_CONTENT_TYPE
from core.services import api_key_create, api_key_revoke

ISSUER = "https://idp.example.com/"
AUDIENCE = "decisioning-api"


class RuleProbe(APIView):
    """An API view held to scopes exactly as the product's are (reads rules:read, writes
    rules:write), so the test depends on the permission pipeline and nothing else."""

    permission_classes = [ScopeRequired]
    required_scopes = {"GET": Scope.RULES_READ, "POST": Scope.RULES_WRITE}

    def get(self, request):
        return Response({"read": True})

    def post(self, request):
        return Response({"written": True}, status=201)


def probe(method: str, authorization: str):
    factory = APIRequestFactory()
    request = getattr(factory, method)(
        "/probe/", {}, format="json", HTTP_AUTHORIZATION=authorization
    )
    return RuleProbe.as_view()(request).render()


def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return private_key()


@pytest.fixture
def identity_provider(settings, signing_key):
    """The customer's identity provider, as settings name it: issuer, audience, public key."""
    settings.JWT_ISSUER = ISSUER
    settings.JWT_AUDIENCE = AUDIENCE
    settings.JWT_PUBLIC_KEY = public_pem(signing_key)
    settings.JWT_JWKS_URL = ""
    return signing_key


def claims(**overrides) -> dict:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "checkout-service",
        "iat": now,
        "exp": now + 300,
        "scope": "rules:read predict",
        **overrides,
    }


def bearer(token: str) -> str:
    return f"Bearer {token}"


def assert_refused_as_unauthenticated(response) -> None:
    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    assert set(response.data) & {"read", "written"} == set()


# --- API keys ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_revoked_key_gets_401_and_its_use_is_not_recorded():
    api_key, raw_key = api_key_create(name="leaked", scopes=["rules:read"])
    api_key_revoke(prefix=api_key.prefix)

    response = probe("get", f"Api-Key {raw_key}")

    assert_refused_as_unauthenticated(response)
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at is None


@pytest.mark.django_db
def test_an_expired_key_gets_401_and_its_use_is_not_recorded():
    api_key, raw_key = api_key_create(
        name="temporary", scopes=["rules:read"], expires_at=timezone.now() + timedelta(days=1)
    )
    ApiKey.objects.filter(pk=api_key.pk).update(expiry_date=timezone.now() - timedelta(seconds=1))

    response = probe("get", f"Api-Key {raw_key}")

    assert_refused_as_unauthenticated(response)
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at is None


@pytest.mark.django_db
def test_a_key_is_held_to_its_scopes_and_a_key_without_scopes_can_do_nothing():
    _, reader = api_key_create(name="reader", scopes=["rules:read"])
    _, nothing = api_key_create(name="nothing", scopes=[])

    assert probe("get", f"Api-Key {reader}").status_code == 200
    written = probe("post", f"Api-Key {reader}")
    assert written.status_code == 403
    assert written["Content-Type"] == PROBLEM_CONTENT_TYPE
    assert "rules:write" in written.data["detail"]
    assert probe("get", f"Api-Key {nothing}").status_code == 403


class EitherProbe(APIView):
    """A read any one of two scopes opens (the view would narrow the rows for the second)."""

    permission_classes = [ScopeRequired]
    required_scopes = {"GET": (Scope.DECISIONS_READ, Scope.EVENTS_WRITE)}

    def get(self, request):
        return Response({"read": True})


@pytest.mark.django_db
def test_a_door_naming_either_of_two_scopes_opens_to_each_and_to_no_other():
    keys = {scope: api_key_create(name=scope, scopes=[scope])[1] for scope in Scope}
    factory = APIRequestFactory()

    opened = {
        scope
        for scope, raw_key in keys.items()
        if EitherProbe.as_view()(factory.get("/", HTTP_AUTHORIZATION=f"Api-Key {raw_key}"))
        .render()
        .status_code
        == 200
    }

    assert opened == {Scope.DECISIONS_READ, Scope.EVENTS_WRITE}


# --- JWT bearer tokens from the customer's identity provider ----------------------------------


@pytest.mark.django_db
def test_a_valid_token_is_held_to_the_scopes_it_carries(identity_provider, client):
    token = jwt.encode(claims(scope="rules:read predict made:up"), identity_provider, "RS256")

    assert probe("get", bearer(token)).status_code == 200
    assert probe("post", bearer(token)).status_code == 403
    whoami = client.get("/api/v1/whoami/", HTTP_AUTHORIZATION=bearer(token)).json()
    assert (whoami["kind"], whoami["name"]) == ("token", "checkout-service")
    assert whoami["scopes"] == ["predict", "rules:read"]  # an unknown scope grants nothing


@pytest.mark.django_db
@pytest.mark.parametrize(
    "forged",
    [
        {"aud": "someone-else"},
        {"iss": "https://evil.example.com/"},
        {"exp": int(time.time()) - 3600},
        {"sub": None},
    ],
    ids=["wrong-audience", "wrong-issuer", "expired", "no-subject"],
)
def test_a_token_with_wrong_claims_gets_401(identity_provider, forged):
    payload = {key: value for key, value in claims(**forged).items() if value is not None}

    assert_refused_as_unauthenticated(
        probe("get", bearer(jwt.encode(payload, identity_provider, "RS256")))
    )


@pytest.mark.django_db
def test_an_unsigned_token_gets_401(identity_provider):
    token = jwt.encode(claims(scope="rules:read rules:write"), key=None, algorithm="none")

    assert_refused_as_unauthenticated(probe("post", bearer(token)))


@pytest.mark.django_db
def test_a_token_signed_by_another_key_gets_401(identity_provider):
    token = jwt.encode(claims(scope="rules:write"), private_key(), "RS256")

    assert_refused_as_unauthenticated(probe("post", bearer(token)))


@pytest.mark.django_db
def test_a_token_hmac_signed_with_the_public_key_gets_401(identity_provider, settings):
    """The algorithm-confusion attack: HS256 keyed with the (public) verification key."""

    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    signed = f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims(scope='rules:write'))}"
    mac = hmac.new(settings.JWT_PUBLIC_KEY.encode(), signed.encode(), hashlib.sha256).digest()
    token = f"{signed}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"

    assert_refused_as_unauthenticated(probe("post", bearer(token)))


@pytest.mark.django_db
def test_bearer_tokens_are_refused_when_no_identity_provider_is_configured(settings, signing_key):
    settings.JWT_ISSUER = ""
    token = jwt.encode(claims(), signing_key, "RS256")

    assert_refused_as_unauthenticated(probe("get", bearer(token)))
