"""The embedded server's settings follow the machine, within bounds."""

from core.embedded_postgres import MIB, server_settings


def test_it_gives_a_sixteenth_of_memory_to_shared_buffers_and_index_builds():
    settings = server_settings(memory_bytes=24 * 1024 * MIB, cores=2)

    assert settings["shared_buffers"] == "1536MB"
    assert settings["maintenance_work_mem"] == "1536MB"
    assert settings["effective_cache_size"] == "12288MB"
    assert settings["max_parallel_maintenance_workers"] == "1"
    assert settings["jit"] == "off"


def test_it_keeps_the_defaults_as_a_floor_and_2_gb_as_a_ceiling():
    small = server_settings(memory_bytes=1024 * MIB, cores=1)
    large = server_settings(memory_bytes=256 * 1024 * MIB, cores=64)

    assert (small["shared_buffers"], small["maintenance_work_mem"]) == ("128MB", "64MB")
    assert (large["shared_buffers"], large["max_parallel_maintenance_workers"]) == ("2048MB", "4")


def test_a_fresh_cluster_runs_with_its_sized_shared_buffers_from_the_first_start(tmp_path):
    """ALTER SYSTEM alone leaves shared_buffers at 128 MB until a restart: the first process
    restarts the server it is alone on."""
    import psycopg

    from core.embedded_postgres import (
        embedded_database_settings,
        embedded_server,
        machine_settings,
    )

    pgdata = tmp_path / "postgres"
    database = embedded_database_settings(pgdata)
    try:
        with psycopg.connect(host=database["HOST"], user="postgres", dbname="postgres") as conn:
            running, wanted = conn.execute(
                "SELECT pg_size_bytes(current_setting('shared_buffers')), pg_size_bytes(%s)",
                [machine_settings()["shared_buffers"]],
            ).fetchone()
    finally:
        embedded_server(pgdata).stop()

    assert running == wanted
