"""`load_demo_data`: every demo set-up step of `make run`, in order; run_stack starts it in the
background once the web server is starting, so the first page does not wait for model training."""

import os
import shlex
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandParser

from core.demo_loading import demo_loaded_record, demo_loading_clear, demo_loading_mark
from core.management.demo import DemoCommand


class Command(DemoCommand):
    help = (
        "Train the demo model and load the demo data (settings.DEMO_SETUP_COMMANDS, each a no-op "
        "when done already); pages show a 'still loading' banner until it ends."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--background",
            action="store_true",
            help="Run at a lower CPU priority, behind the web server and workers.",
        )

    def handle(self, *args: Any, background: bool, **options: Any) -> None:
        if background:
            os.nice(10)
        demo_loading_mark()
        try:
            for command_line in settings.DEMO_SETUP_COMMANDS:
                name, *arguments = shlex.split(command_line)
                call_command(name, *arguments, stdout=self.stdout, stderr=self.stderr)
            demo_loaded_record()
        finally:
            demo_loading_clear()  # a failure is printed above; the banner must not stay forever
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
