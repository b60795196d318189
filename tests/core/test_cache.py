"""The Redis cache backend: Django's, reusing one redis-py client per connection pool."""

import os
import subprocess
import sys
import threading

import pytest

from apps.core.cache import PostmasterRedisCache

pytestmark = pytest.mark.services


@pytest.fixture
def redis_cache(settings):
    url = settings.CELERY_BROKER_URL.rsplit("/", 1)[0] + "/15"
    cache = PostmasterRedisCache(url, {"KEY_PREFIX": "test-cache-client"})
    yield cache
    cache.clear()


def test_it_works_as_djangos_redis_cache(redis_cache):
    assert redis_cache.add("k", {"a": 1}, 30) is True
    assert redis_cache.add("k", 2, 30) is False
    assert redis_cache.get("k") == {"a": 1}
    redis_cache.delete("k")
    assert redis_cache.get("k") is None


def test_one_client_serves_every_call_and_thread(redis_cache):
    clients = set()

    def use():
        for n in range(20):
            redis_cache.set(f"n{n}", n, 30)
            clients.add(id(redis_cache._cache.get_client(write=True)))

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(clients) == 1
    assert redis_cache.get_many([f"n{n}" for n in range(20)]) == {f"n{n}": n for n in range(20)}


def test_settings_choose_it_for_a_redis_cache_url():
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "CACHE_URL": "redis://127.0.0.1:6379/15",
    }
    code = "import django; django.setup(); from django.conf import settings; "
    code += "print(settings.CACHES['default']['BACKEND'])"
    found = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "apps.core.cache.PostmasterRedisCache"
