"""engine.ids.uuid7: run ids that sort by creation time (RFC 9562's version 7)."""

from __future__ import annotations

import time
import uuid

from engine.ids import uuid7


def test_a_run_id_is_a_version_7_uuid_with_its_creation_millisecond_first():
    before = time.time_ns() // 1_000_000
    made = uuid7()
    after = time.time_ns() // 1_000_000
    assert made.version == 7 and made.variant == uuid.RFC_4122
    assert before <= made.int >> 80 <= after
    assert uuid.UUID(str(made)) == made


def test_ids_made_in_later_milliseconds_sort_after_and_the_rest_is_random():
    ids = [uuid7(at_ms=1_700_000_000_000 + i) for i in range(1000)]
    assert sorted(ids) == ids
    same = {uuid7(at_ms=1_700_000_000_000) for _ in range(1000)}
    assert len(same) == 1000  # 74 random bits apart
    assert all(u.int >> 80 == 1_700_000_000_000 and u.version == 7 for u in same)


def test_runs_get_time_ordered_ids():
    from engine.models import Run

    assert Run._meta.get_field("id").default is uuid7
