from django.core.management.base import BaseCommand, CommandParser

from core.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for an integrator; the key is printed once, as the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Who the key is for, e.g. 'checkout-service'.")

    def handle(self, *args: object, name: str, **options: object) -> None:
        api_key, raw_key = api_key_create(name=name)
        self.stdout.write(
            f"Created API key '{api_key.name}' (prefix {api_key.prefix}). "
            "Store it now; it cannot be shown again."
        )
        self.stdout.write("Use it as the header  Authorization: Api-Key <key>")
        self.stdout.write(raw_key)
