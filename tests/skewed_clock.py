"""Loaded into worker processes by a test (WEFT_TASK_MODULES): this process's clock runs an hour fast."""

import time

from django.utils import timezone

SKEW_S = 3600
_real_time, _real_now = time.time, timezone.now


def _fast_time() -> float:
    return _real_time() + SKEW_S


def _fast_now():
    return _real_now() + timezone.timedelta(seconds=SKEW_S)


time.time = _fast_time
timezone.now = _fast_now
