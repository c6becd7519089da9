"""Rate limits per client address and per device, through the `limits` library."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse, storage, strategies

from serving.http import ApiError
from serving.settings import ServiceSettings


class RateLimits:
    """Moving-window limits; `memory://` storage is per process, a shared one spans workers."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.storage = storage.storage_from_string(settings.rate_limit_storage)
        self.limiter = strategies.MovingWindowRateLimiter(self.storage)
        self.registration = parse(settings.registration_rate_limit)
        self.upload = parse(settings.upload_rate_limit)
        self.chat = parse(settings.chat_rate_limit)

    def hit(self, item: RateLimitItem, scope: str, key: str) -> None:
        """Count one request; 429 with Retry-After once the window is full."""
        if self.limiter.hit(item, scope, key):
            return
        reset = self.limiter.get_window_stats(item, scope, key).reset_time
        retry = max(1, math.ceil(reset - time.time()))
        raise ApiError(
            429,
            f"rate limit {item} exceeded for this {scope}; retry in {retry} s",
            reason="rate_limited",
            headers={"Retry-After": str(retry)},
        )
