import secrets

from django.conf import settings

from core.management.demo import DemoCommand
from core.services import demo_admin_ensure


class Command(DemoCommand):
    help = "Create the demo admin user once and print its credentials (development only)."

    def handle(self, *args: object, **options: object) -> None:
        credentials_file = settings.DATA_DIR / "demo-admin.txt"
        password = secrets.token_urlsafe(12)
        if demo_admin_ensure(username="admin", password=password):
            credentials_file.parent.mkdir(parents=True, exist_ok=True)
            credentials_file.write_text(f"admin {password}\n")
            credentials_file.chmod(0o600)
            self.stdout.write(
                self.style.SUCCESS(
                    f"Demo admin created. Log in at /admin/ and / as  admin / {password}  "
                    f"(also saved in {credentials_file})."
                )
            )
        else:
            self.stdout.write(
                f"Demo admin 'admin' exists; its first password is in {credentials_file}."
            )
