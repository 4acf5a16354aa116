"""Who a machine caller is once authenticated, and a stable id for any caller."""

from dataclasses import dataclass, field
from typing import Any

from core.models import ApiKey


@dataclass(frozen=True)
class ApiClient:
    """A machine caller (API key or JWT); it quacks enough like a user for DRF permissions."""

    name: str
    scopes: frozenset[str]
    api_key: ApiKey | None = None
    token_subject: str = ""
    is_authenticated: bool = True
    is_anonymous: bool = False
    is_staff: bool = False
    claims: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def pk(self) -> str:
        # Logged as user_id: the key's public prefix (never its hash) or the token's subject.
        return self.identity

    @property
    def identity(self) -> str:
        if self.api_key is not None:
            return f"api-key:{self.api_key.prefix}"
        return f"jwt:{self.token_subject}"

    @property
    def username(self) -> str:
        return f"api-key:{self.name}" if self.api_key is not None else f"jwt:{self.name}"

    def __str__(self) -> str:
        return self.username


def client_scope(user: object) -> str:
    """A stable identifier of the caller, for per-client idempotency keys and audit labels."""
    if isinstance(user, ApiClient):
        if user.api_key is not None:
            return f"key:{user.api_key.prefix}"
        return f"jwt:{user.token_subject}"
    return f"user:{getattr(user, 'pk', 'anonymous')}"
