from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import DomainError
from core.services import api_key_revoke


class Command(BaseCommand):
    help = "Revoke an API key by its prefix (the part before the dot); the revocation is audited."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefix")

    def handle(self, *args: object, prefix: str, **options: object) -> None:
        try:
            api_key = api_key_revoke(prefix=prefix)
        except DomainError as error:
            raise CommandError(error.detail) from None
        self.stdout.write(f"Revoked API key '{api_key.name}' ({api_key.prefix}).")
