import atexit
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from honcho.manager import Manager

from core.demo_loading import demo_is_loaded, demo_loading_clear, demo_loading_mark
from core.embedded_postgres import embedded_server


def reachable_host(host: str) -> str:
    """Where this machine reaches a server bound to `host` (a wildcard bind through loopback)."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104


def stack_environment(environ: Mapping[str, str], *, host: str, port: int) -> dict[str, str]:
    """What web, worker and beat inherit: callbacks come back to the port served, unless the
    operator named a public URL (the simulator posts its receipts to PUBLIC_BASE_URL)."""
    return {
        "PUBLIC_BASE_URL": f"http://{reachable_host(host)}:{port}",
        **environ,
        "PORT": str(port),
        "PYTHONUNBUFFERED": "1",
    }


class Command(BaseCommand):
    help = (
        "Set up and run the whole product: migrate, static files, the demo admin, then the web "
        "server, Celery workers and beat, with the demo data loading in the background. Ctrl-C "
        "stops all of it (the embedded database too)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument(
            "--no-setup", action="store_true", help="Skip migrations and demo data."
        )

    def handle(
        self, *args: object, port: int, host: str, no_setup: bool, **options: object
    ) -> None:
        if not no_setup:
            self.prepare()
        python = shlex.quote(sys.executable)
        manager = Manager()
        env = stack_environment(os.environ, host=host, port=port)
        manager.add_process(
            "web",
            f"{python} -m gunicorn config.wsgi:application --bind {host}:{port} "
            "--workers 2 --threads 4 --preload --access-logfile - --graceful-timeout 5",
            env=env,
        )
        # Without Redis the send-rate bucket lives in process memory: one worker process with
        # threads keeps the configured rate exact (two processes would each allow the full rate)
        # while still sending, receipting and dispatching side by side.
        if settings.RATE_LIMIT_STORAGE_URL.startswith("memory://"):
            pool = "--pool threads --concurrency 8"
        else:
            pool = "--concurrency 2"
        # The default queue and every queue heavy work is routed to (backtests, ...).
        queues = ",".join(
            sorted(
                {settings.CELERY_TASK_DEFAULT_QUEUE}
                | {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
            )
        )
        # The Celery processes start once the web server accepts connections: on two cores the
        # first page would otherwise wait for four interpreters importing Django at once.
        wait_script = shlex.quote(str(settings.BASE_DIR / "scripts" / "wait_for_port.py"))
        after_web = f"{python} -S {wait_script} {shlex.quote(reachable_host(host))} {port} && exec "
        manager.add_process(
            "worker",
            f"{after_web}{python} -m celery -A config worker --loglevel INFO {pool} "
            f"--queues {queues}",
            env=env,
        )
        # Heavy jobs (campaign preview, launch, CSV import) on their own queue and process:
        # prefork, so their soft time limits work, and never in the way of sends and receipts.
        manager.add_process(
            "heavy",
            f"{after_web}{python} -m celery -A config worker --loglevel INFO --concurrency 1 "
            f"-Q {shlex.quote(settings.CAMPAIGNS_HEAVY_QUEUE)} --hostname heavy@%h",
            env=env,
        )
        manager.add_process(
            "beat",
            f"{after_web}{python} -m celery -A config beat --loglevel INFO "
            f"--schedule {shlex.quote(settings.CELERY_BEAT_SCHEDULE_FILENAME)}",
            env=env,
        )
        self.stdout.write(
            self.style.SUCCESS(f"Serving on http://{host}:{port}/  (Ctrl-C stops everything)")
        )
        # A warm start whose demo data is in place starts no loader: one process less to boot.
        loads_demo = not (no_setup or settings.PRODUCTION or demo_is_loaded())
        demo_loader = self.demo_data_load_start(env) if loads_demo else None
        try:
            manager.loop()
        finally:
            if demo_loader is not None:
                self.demo_data_load_stop(demo_loader)
            demo_loading_clear()
            if settings.EMBEDDED_DATABASE:
                server = embedded_server(settings.DATA_DIR / "postgres")
                server.stop()
                # Stopped on purpose: pgserver's own exit hook need not try again.
                atexit.unregister(server._cleanup)
                self.stdout.write("Embedded PostgreSQL stopped.")
        sys.exit(manager.returncode or 0)

    def prepare(self) -> None:
        """What the first page needs; each step is a no-op when already done."""
        settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=1)
        call_command("collectstatic", interactive=False, verbosity=0)
        if settings.PRODUCTION:
            return  # the demo loaders refuse to run there; production has its own data
        call_command("ensure_demo_admin")

    def demo_data_load_stop(self, demo_loader: subprocess.Popen[bytes]) -> None:
        """Each loader is idempotent: stopped midway, the next `make run` completes it."""
        demo_loader.terminate()
        try:
            demo_loader.wait(timeout=15)
        except subprocess.TimeoutExpired:
            demo_loader.kill()
            demo_loader.wait()

    def demo_data_load_start(self, env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Model training and demo data in a process of their own (it lowers its CPU priority,
        so the web server and workers start first); pages show a banner until it is done."""
        demo_loading_mark()  # before the first page, not when the loader gets to it
        manage = str(settings.BASE_DIR / "manage.py")
        return subprocess.Popen(  # noqa: S603 (our own interpreter and command, no user input)
            [sys.executable, manage, "load_demo_data", "--background"], env=env
        )
