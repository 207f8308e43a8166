"""Webhooks (PROTOCOL §9.6): events POSTed as JSON to the operator's URL, signed, retried.

Theory of operation. ``emit`` only appends the event to a bounded queue, so the relay
never waits for a web server: one sender task POSTs events in order with httpx. Each
body is signed with HMAC-SHA256 of the exact bytes under ``webhooks.secret``, sent as
``X-Switchboard-Signature: sha256=<hex>``, so the receiver can check it came from us.
A network error, a 5xx or a 429 is retried with doubling, jittered delays up to
``webhooks.attempts`` tries; any other answer ends that event (a 4xx will not get
better by sending it again). One event at a time and a bounded number of tries: a
receiver that is down costs it a few requests per event, never a storm. When the queue
is full the newest event is dropped and counted, and the relay goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from config import WebhooksConfig

__all__ = ["SIGNATURE_HEADER", "WebhookSender", "signature"]

log = logging.getLogger(__name__)

_JITTER = random.Random()
"""The retries' jitter, apart from the global generator: nothing here moves its state."""

SIGNATURE_HEADER = "X-Switchboard-Signature"


def signature(secret: str, body: bytes) -> str:
    """The header value for ``body``: ``sha256=`` and the hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSender:
    def __init__(
        self,
        config: WebhooksConfig,
        *,
        client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._client = client
        self._sleep = sleep
        self._clock = clock
        self._queue: deque[bytes] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    @property
    def enabled(self) -> bool:
        return bool(self._config.url)

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def emit(self, event: str, data: dict[str, Any]) -> None:
        """Queue one event; never waits, never raises."""
        if not self.enabled:
            return
        if len(self._queue) >= self._config.queue:
            self.dropped += 1
            log.warning("webhook queue full: %s dropped", event)
            return
        body = {"event": event, "time": int(self._clock() * 1000), "data": data}
        self._queue.append(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())
        self._wake.set()

    async def _run(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._config.timeout)
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                await self._deliver(self._queue.popleft())

    async def _deliver(self, body: bytes) -> None:
        config = self._config
        assert self._client is not None
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(config.secret, body),
        }
        delay = config.backoff_min
        for attempt in range(1, config.attempts + 1):
            try:
                answer = await self._client.post(config.url, content=body, headers=headers)
                if answer.status_code < 300:
                    self.sent += 1
                    return
                if answer.status_code < 500 and answer.status_code != 429:
                    log.warning("webhook refused with %d; not retried", answer.status_code)
                    break
                reason = f"HTTP {answer.status_code}"
            except httpx.HTTPError as exc:
                reason = type(exc).__name__
            if attempt < config.attempts:
                log.info("webhook attempt %d failed (%s); retrying", attempt, reason)
                await self._sleep(delay * _JITTER.uniform(0.5, 1.0))
                delay = min(delay * 2, config.backoff_max)
        self.failed += 1
