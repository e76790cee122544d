"""Run ids that sort by creation time (UUID version 7, RFC 9562), so a new run's rows go to the end of the indexes
keyed by its id.

A run's id leads the keys of its steps' (run, node) index, its events' (run, seq) index and the run table's own.
With random ids (version 4), each new run's rows land on leaf pages spread over the whole of each index: on a
database of a million runs, pages that have left PostgreSQL's cache, and pages that each checkpoint makes write
whole to the WAL again on their first change. Time-ordered ids keep new rows on the few pages at the end.
"""

from __future__ import annotations

import os
import time
import uuid

_RAND_A = (1 << 12) - 1
_RAND_B = (1 << 62) - 1


def uuid7(at_ms: int | None = None) -> uuid.UUID:
    """A version-7 UUID: 48 bits of Unix time in milliseconds (now, or ``at_ms``), then the version, 12 random
    bits, the variant and 62 random bits."""
    ms = time.time_ns() // 1_000_000 if at_ms is None else at_ms
    rand = int.from_bytes(os.urandom(10), "big")
    return uuid.UUID(int=(ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | ((rand >> 64) & _RAND_A) << 64
                     | 0b10 << 62 | (rand & _RAND_B))


def short_id(run_id) -> str:
    """How a run is named where its whole id is too long (pages, logs): its id's last 8 hex digits, which are
    random. The first 8 are its creation time, the same for every run made within about 65 seconds."""
    return str(run_id)[-8:]
