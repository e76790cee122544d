"""engine.ids.uuid7: run ids that sort by creation time (RFC 9562's version 7)."""

from __future__ import annotations

import time
import uuid

from engine.ids import short_id, uuid7


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


def test_a_runs_short_name_is_the_random_end_of_its_id():
    """Pages and logs name a run by 8 hex digits: its id's first 8 are the same for runs made within 65 s."""
    start = 1_700_000_000_000 // 65_536 * 65_536  # the first 8 hex digits change every 65,536 ms
    same_minute = [uuid7(at_ms=start + i * 600) for i in range(100)]
    assert len({str(u)[:8] for u in same_minute}) == 1
    assert len({short_id(u) for u in same_minute}) == 100
    assert short_id(same_minute[0]) == str(same_minute[0])[-8:]
