from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from core.access import ALL_SCOPES
from core.errors import DomainError
from core.services import api_key_create


class Command(BaseCommand):
    help = (
        "Create an API key for an integrator with the scopes it needs; the key is printed once, "
        "as the last line. A key without scopes can do nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Who the key is for, e.g. 'checkout-service'.")
        parser.add_argument(
            "--scope",
            action="append",
            default=[],
            dest="scopes",
            metavar="SCOPE",
            help="Repeat for each scope; 'all' grants every one. Known: "
            + ", ".join(sorted(ALL_SCOPES)),
        )
        parser.add_argument(
            "--expires-in-days", type=int, default=None, help="The key stops working after this."
        )

    def handle(
        self,
        *args: object,
        name: str,
        scopes: list[str],
        expires_in_days: int | None,
        **options: object,
    ) -> None:
        expires_at = (
            timezone.now() + timedelta(days=expires_in_days)
            if expires_in_days is not None
            else None
        )
        try:
            api_key, raw_key = api_key_create(name=name, scopes=scopes, expires_at=expires_at)
        except DomainError as error:
            raise CommandError(error.detail) from None
        granted = ", ".join(api_key.scopes) or "none (this key can do nothing)"
        self.stdout.write(
            f"Created API key '{api_key.name}' (prefix {api_key.prefix}), scopes: {granted}. "
            "Store it now; it cannot be shown again."
        )
        self.stdout.write("Use it as the header  Authorization: Api-Key <key>")
        self.stdout.write(raw_key)
