"""Generations: one number per catalogue (rules, risk models) that every write to it moves.

Hot paths cache what they load from a catalogue per process (the rules an event type runs, the
production version of a model) and read its generation, one primary-key lookup, per request
instead of loading the rows again. A trigger, not the services, moves the number, so no write
can forget to: the admin, a data migration, raw SQL and a TRUNCATE all do. It fires before each
statement, so it takes the generation row's lock before the statement locks any catalogue row
(two writers queue on it instead of deadlocking), and every statement takes a fresh value of a
sequence: a transaction that writes twice moves it twice, and no value is ever given again,
even by a rolled-back transaction.

Read the generation before the rows: a change committed between the two reads is cached under
the older number, which the next request no longer sees, so it is loaded again; never the other
way round (old rows under a new number).
"""

import threading
from collections.abc import Callable, Hashable, Sequence

from django.db import connection


def generation_triggers_sql(*, name: str, tables: Sequence[str]) -> tuple[str, str]:
    """(forward, reverse) SQL adding the generation `name`'s triggers to `tables`: for a
    catalogue table that joins a generation after it was created."""
    forward = "".join(
        f"CREATE TRIGGER {table}_generation\n"
        f"    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}\n"
        f"    FOR EACH STATEMENT EXECUTE FUNCTION {name}_bump();\n"
        for table in tables
    )
    reverse = "".join(
        f"DROP TRIGGER IF EXISTS {table}_generation ON {table};\n" for table in tables
    )
    return forward, reverse


def generation_sql(*, name: str, tables: Sequence[str]) -> tuple[str, str]:
    """(forward, reverse) SQL creating the generation table `name` and its triggers on `tables`,
    for a migration's RunSQL."""
    triggers, drop_triggers = generation_triggers_sql(name=name, tables=tables)
    # Names come from migrations, never from input.
    forward = f"""
CREATE SEQUENCE {name}_seq;
CREATE TABLE {name} (
    id smallint PRIMARY KEY CHECK (id = 1),
    value bigint NOT NULL
);
INSERT INTO {name} (id, value) VALUES (1, nextval('{name}_seq'));
CREATE FUNCTION {name}_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {name} (id, value) VALUES (1, nextval('{name}_seq'))
        ON CONFLICT (id) DO UPDATE SET value = EXCLUDED.value;
    RETURN NULL;
END
$$;
{triggers}"""  # noqa: S608
    reverse = drop_triggers + (
        f"DROP FUNCTION IF EXISTS {name}_bump();\n"
        f"DROP TABLE IF EXISTS {name};\n"
        f"DROP SEQUENCE IF EXISTS {name}_seq;\n"
    )
    return forward, reverse


def generation_query(name: str) -> str:
    """The SQL scalar sub-query of the generation's value, e.g. for a statement's RETURNING.
    `name` is one of the code's own table names, never input."""
    return f"(SELECT value FROM {name} WHERE id = 1)"  # noqa: S608 - a constant


def generation_read(name: str) -> int | None:
    """The generation's current value (None if its row is missing: then nothing is cached)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {generation_query(name)}")
        found = cursor.fetchone()
    return int(found[0]) if found and found[0] is not None else None


class GenerationCache[Value]:
    """Values loaded from one catalogue, each kept with the generation it was loaded under and
    used only while the generation stays the same. Keys include the database's name (the test
    suite switches databases within one process). Bounded: cleared whole when full, since keys
    such as event types are the integrators' to invent. Cached values are shared between
    requests and threads: read them, never change them."""

    def __init__(self, *, generation: str, limit: int = 1_000) -> None:
        self.generation = generation
        self.limit = limit
        self._entries: dict[tuple[str, Hashable], tuple[int, Value]] = {}
        self._lock = threading.Lock()

    def get(
        self, key: Hashable, load: Callable[[], Value], *, generation: int | None = None
    ) -> Value:
        """The cached value of `key` under the current generation, else `load()`'s.
        `generation`: the current value when the caller read it already (generation_query)."""
        if generation is None:
            generation = generation_read(self.generation)
        full_key = (connection.settings_dict["NAME"], key)
        cached = self._entries.get(full_key)
        if cached is not None and generation is not None and cached[0] == generation:
            return cached[1]
        value = load()
        if generation is not None:
            with self._lock:
                if len(self._entries) >= self.limit:
                    self._entries.clear()
                self._entries[full_key] = (generation, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
