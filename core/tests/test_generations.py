"""GenerationCache: a value is reused while its catalogue's generation stays the same, loaded
again once any write moved it, and the cache never grows past its bound."""

import pytest

from core.generations import GenerationCache
from decisions.live_rules import RULES_GENERATION
from decisions.models import Rule

pytestmark = pytest.mark.django_db


def test_it_loads_again_only_after_a_write_moved_the_generation(django_assert_num_queries):
    cache: GenerationCache[int] = GenerationCache(generation=RULES_GENERATION)
    loads = []

    def load() -> int:
        loads.append(1)
        return len(loads)

    assert cache.get("key", load) == 1
    with django_assert_num_queries(1):
        assert cache.get("key", load) == 1
    Rule.objects.filter(key="nothing").update(name="x")  # a statement on no row still counts

    assert cache.get("key", load) == 2


def test_a_full_cache_starts_again_rather_than_growing():
    cache: GenerationCache[str] = GenerationCache(generation=RULES_GENERATION, limit=2)

    for index in range(5):
        cache.get(index, lambda index=index: f"value {index}")

    assert len(cache._entries) <= 2
