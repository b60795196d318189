"""Django's Redis cache, with one redis-py client per connection pool instead of one per call.

Django's `RedisCacheClient.get_client()` builds a new `redis.Redis` for every
cache operation, and each one fills a table of ~170 response callbacks: about
0.2 ms of CPU per `cache.get()`, more than the round trip to Redis. A client
is thread-safe (it takes a connection from its pool per command), so one per
pool serves every thread. Selected in settings for `redis://` CACHE_URLs.
"""

import threading

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class _ReusedClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}
        # Threads that meet a pool's first use would each build a pool and a client.
        self._first_use = threading.Lock()

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            with self._first_use:
                client = self._clients.get(index)
                if client is None:
                    pool = self._get_connection_pool(write)
                    client = self._clients[index] = self._client(connection_pool=pool)
        return client


class PostmasterRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _ReusedClient
