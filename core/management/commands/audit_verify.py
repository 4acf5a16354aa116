from django.core.management.base import BaseCommand, CommandError

from core.audit import audit_chain_verify


class Command(BaseCommand):
    help = "Walk the audit trail's hash chain and report the first broken link (exit 1 if any)."

    def handle(self, *args: object, **options: object) -> None:
        checked, broken = audit_chain_verify()
        if broken is not None:
            raise CommandError(
                f"Audit entry {broken.entry_id} {broken.problem} "
                f"({checked} entries before it verified)."
            )
        self.stdout.write(self.style.SUCCESS(f"Audit trail intact: {checked} entries verified."))
