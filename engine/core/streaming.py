"""A model's reply as it is written: the text so far of one journaled call, sent to the run's websocket listeners
at most every WEFT_STREAM_INTERVAL_S (engine.core.events.publish_text). Nothing is stored; the journal records the
finished reply."""

from __future__ import annotations

import time

from django.conf import settings

from engine.core import events


class TextStream:
    """Collects the pieces of text a provider reads off a streamed reply and publishes the whole text so far,
    batched in time. ``add`` is called for every piece; ``close`` once, when the reply is complete or failed."""

    def __init__(self, *, run_id, node_id: str, attempt: int, key: str):
        self.run_id, self.node_id, self.attempt, self.key = str(run_id), node_id, attempt, key
        self.text = ""
        self.at = 0.0  # when the text was last published

    def add(self, piece: str) -> None:
        if not piece:
            return
        self.text += piece
        if time.monotonic() - self.at >= settings.WEFT_STREAM_INTERVAL_S:
            self._publish(done=False)

    def close(self) -> None:
        if self.text:
            self._publish(done=True)

    def _publish(self, *, done: bool) -> None:
        events.publish_text(self.run_id, node_id=self.node_id, attempt=self.attempt, key=self.key, text=self.text,
                            done=done)
        self.at = time.monotonic()
