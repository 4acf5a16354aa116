"""Outbound webhooks' secrets and signatures.

A secret is stored encrypted (Fernet, keyed from SECRET_KEY and its fallbacks, so rotating
SECRET_KEY with the old one in SECRET_KEY_FALLBACKS keeps the secrets readable) and shown once.
Each body is signed HMAC-SHA256 over `<timestamp>.<body>`, the header reading
`t=<unix seconds>,v1=<hex digest>` (docs/api.md, "Outbound webhooks"): the timestamp lets a
receiver refuse a replayed request.
"""

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

SIGNATURE_HEADER = "Webhook-Signature"
SIGNATURE_TOLERANCE_SECONDS = 300
_KEY_INFO = b"decisions.webhook-secret"


def secret_generate() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


def _fernet_for(secret_key: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_INFO).derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def _fernet() -> MultiFernet:
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([_fernet_for(key) for key in keys])


def secret_encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def secret_decrypt(token: str) -> str:
    """The secret; ValueError when no current or fallback SECRET_KEY opens it."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("The webhook secret cannot be decrypted with SECRET_KEY.") from None


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(*, secret: str, body: bytes, timestamp: int) -> str:
    return f"t={timestamp},v1={_digest(secret, body, timestamp)}"


def signature_verify(*, secret: str, body: bytes, header: str, now: int) -> bool:
    """What a receiver does: the digest matches and the timestamp is recent."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > SIGNATURE_TOLERANCE_SECONDS:
        return False
    return hmac.compare_digest(parts.get("v1", ""), _digest(secret, body, timestamp))
