#!/usr/bin/env python3
"""Back up the product's database with pg_dump, in its custom format (compressed, restorable
table by table with pg_restore). Run it with the project's Python:

    .venv/bin/python scripts/backup.py [--output FILE]      # docker: python scripts/backup.py

Everything is in it: schema (pgvector extension and HNSW indexes included), rules and their
versions, events, decisions, records, campaigns, messages, the audit trail. Secrets are not
(SECRET_KEY, Twilio tokens): keep them in your secret store. See docs/operations.md.
"""

import argparse
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from pg_tools import ROOT, database_url, tool


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    parser.add_argument(
        "--output", type=Path, default=ROOT / "backups" / f"decisioning-{stamp}.dump"
    )
    arguments = parser.parse_args()
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    partial = arguments.output.with_name(arguments.output.name + ".partial")
    subprocess.run(  # noqa: S603 -- our own binaries, arguments from the operator
        [
            tool("pg_dump"),
            "--format=custom",
            "--no-owner",
            "--no-privileges",
            f"--file={partial}",
            f"--dbname={database_url()}",
        ],
        check=True,
    )
    partial.replace(arguments.output)  # a backup file is complete or absent, never half written
    print(f"{arguments.output} ({arguments.output.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
