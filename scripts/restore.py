#!/usr/bin/env python3
"""Restore a backup made by scripts/backup.py with pg_restore, in one transaction:

    .venv/bin/python scripts/restore.py FILE [--target-url URL] [--create] [--clean]

The target is --target-url, else DATABASE_URL, else the embedded database. It must be empty
(a fresh database: --create makes it) unless --clean, which drops what the backup holds first.
Either all of it is restored or nothing is. Then run `manage.py migrate` (a no-op when the code
is the backup's version). See docs/operations.md.
"""

import argparse
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from pg_tools import database_url, tool
from psycopg import sql


def database_create(url: str) -> None:
    """CREATE DATABASE the target names, connecting to its server's `postgres` database."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as server:
        if not server.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def table_count(url: str) -> int:
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()
        return int(row[0]) if row else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backup", type=Path)
    parser.add_argument("--target-url", default=None)
    parser.add_argument("--create", action="store_true", help="create the target database")
    parser.add_argument("--clean", action="store_true", help="drop the backup's objects first")
    arguments = parser.parse_args()
    target = arguments.target_url or database_url()
    if arguments.create:
        database_create(target)
    if not arguments.clean and table_count(target) > 0:
        raise SystemExit("The target database is not empty: restore into a fresh one, or --clean.")
    options = ["--clean", "--if-exists"] if arguments.clean else []
    subprocess.run(  # noqa: S603 -- our own binaries, arguments from the operator
        [
            tool("pg_restore"),
            *options,
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={target}",
            str(arguments.backup),
        ],
        check=True,
    )
    print(f"restored {arguments.backup} ({table_count(target)} tables)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
