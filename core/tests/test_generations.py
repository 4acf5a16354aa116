"""GenerationCache: a value is reused while its catalogue's generation stays the same, loaded
again once any write moved it, and the cache never grows past its bound."""

import pytest
from django.db import connection

from core.generations import GenerationCache, generation_sql

pytestmark = pytest.mark.django_db

GENERATION = "core_test_generation"


@pytest.fixture
def catalogue():
    """A table with a generation, created in the test's transaction (rolled back after)."""
    forward, _reverse = generation_sql(name=GENERATION, tables=["core_test_catalogue"])
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE core_test_catalogue (id int)")
        cursor.execute(forward)
    return "core_test_catalogue"


def test_it_loads_again_only_after_a_write_moved_the_generation(
    catalogue, django_assert_num_queries
):
    cache: GenerationCache[int] = GenerationCache(generation=GENERATION)
    loads = []

    def load() -> int:
        loads.append(1)
        return len(loads)

    assert cache.get("key", load) == 1
    with django_assert_num_queries(1):
        assert cache.get("key", load) == 1
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {catalogue} SET id = 1 WHERE false")  # a statement, no row

    assert cache.get("key", load) == 2
    assert cache.get("key", load) == 2


def test_a_full_cache_starts_again_rather_than_growing(catalogue):
    cache: GenerationCache[str] = GenerationCache(generation=GENERATION, limit=2)

    for index in range(5):
        cache.get(index, lambda index=index: f"value {index}")

    assert len(cache._entries) <= 2
