"""The per-process cache of parsed workflow versions is shared by a worker's threads (the node's, the heartbeat's)
and a web server's: concurrent lookups and evictions must not break it."""

import threading
import time
from collections import OrderedDict
from types import SimpleNamespace

from engine.core import versions


class SlowCache(OrderedDict):
    """The cache, with a pause after each read: another thread gets to run between a read and what follows it."""

    def get(self, key, default=None):
        value = super().get(key, default)
        time.sleep(0.0002)
        return value


def test_concurrent_lookups_and_evictions_keep_the_cache_whole(monkeypatch):
    monkeypatch.setattr(versions, "graph_load", lambda definition: definition)
    monkeypatch.setattr(versions, "_GRAPH_CACHE_SIZE", 2)
    monkeypatch.setattr(versions, "_GRAPHS", SlowCache())
    wanted = [SimpleNamespace(pk=pk, definition={"version": pk}) for pk in range(4)]
    errors: list[BaseException] = []

    def look_up(offset: int) -> None:
        try:
            for i in range(200):
                version = wanted[(i + offset) % len(wanted)]
                assert versions.version_graph(version) == {"version": version.pk}
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=look_up, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(versions._GRAPHS) <= 2
