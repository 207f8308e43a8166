"""Webhooks (PROTOCOL §9.6) against a mocked receiver (respx): payload, signature, retries
on failure with growing delays, no retry storm, and a queue that never blocks."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json

import httpx
import pytest
import respx

from config import WebhooksConfig
from signaling.support.webhooks import SIGNATURE_HEADER, WebhookSender

URL = "https://hooks.example.test/switchboard"
CONFIG = WebhooksConfig(url=URL, secret="hook-secret", attempts=3, backoff_min=1.0, backoff_max=3.0)


class Sleeps:
    """Records the delays instead of waiting them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


async def settle(sender: WebhookSender, events: int) -> None:
    for _ in range(500):
        if sender.sent + sender.failed >= events:
            return
        await asyncio.sleep(0.001)
    raise AssertionError("events not delivered")


@respx.mock
async def test_an_event_is_posted_signed() -> None:
    route = respx.post(URL).mock(return_value=httpx.Response(204))
    sender = WebhookSender(CONFIG, sleep=Sleeps(), clock=lambda: 1_800_000_000.5)
    sender.start()
    sender.emit("message.offline", {"from": "dave", "to": "carol", "text": "hi"})
    await settle(sender, 1)
    await sender.stop()
    request = route.calls.last.request
    body = request.content
    assert json.loads(body) == {
        "event": "message.offline",
        "time": 1_800_000_000_500,
        "data": {"from": "dave", "to": "carol", "text": "hi"},
    }
    expected = "sha256=" + hmac.new(b"hook-secret", body, hashlib.sha256).hexdigest()
    assert request.headers[SIGNATURE_HEADER] == expected
    assert request.headers["content-type"] == "application/json"


@respx.mock
async def test_failures_are_retried_with_growing_delays() -> None:
    route = respx.post(URL).mock(
        side_effect=[httpx.Response(500), httpx.ConnectError("down"), httpx.Response(200)]
    )
    sleeps = Sleeps()
    sender = WebhookSender(CONFIG, sleep=sleeps)
    sender.start()
    sender.emit("message.offline", {})
    await settle(sender, 1)
    await sender.stop()
    assert route.call_count == 3 and sender.sent == 1
    first, second = sleeps.delays
    assert 0.5 <= first <= 1.0 and 1.0 <= second <= 2.0  # doubling, with jitter


@respx.mock
async def test_no_retry_storm() -> None:
    """A receiver that is down gets ``attempts`` tries per event, in order, and a 4xx
    (other than 429) is not retried at all."""
    route = respx.post(URL).mock(return_value=httpx.Response(503))
    sleeps = Sleeps()
    sender = WebhookSender(CONFIG, sleep=sleeps)
    sender.start()
    for index in range(2):
        sender.emit("message.offline", {"n": index})
    await settle(sender, 2)
    assert route.call_count == 6 and sender.failed == 2
    assert max(sleeps.delays) <= CONFIG.backoff_max
    route.mock(return_value=httpx.Response(400))
    sender.emit("message.offline", {"n": 2})
    await settle(sender, 3)
    await sender.stop()
    assert route.call_count == 7  # one try only


async def test_a_full_queue_drops_new_events_and_never_blocks() -> None:
    small = WebhooksConfig(url=URL, secret="s", queue=2)
    sender = WebhookSender(small, sleep=Sleeps())  # not started: nothing is sent
    for index in range(5):
        sender.emit("message.offline", {"n": index})
    assert sender.dropped == 3


def test_without_a_url_nothing_is_queued() -> None:
    sender = WebhookSender(WebhooksConfig())
    sender.emit("message.offline", {})
    assert not sender.enabled and sender.dropped == 0


@pytest.mark.parametrize("status", [429, 502])
@respx.mock
async def test_busy_and_gateway_errors_are_retried(status: int) -> None:
    route = respx.post(URL).mock(side_effect=[httpx.Response(status), httpx.Response(200)])
    sender = WebhookSender(CONFIG, sleep=Sleeps())
    sender.start()
    sender.emit("message.offline", {})
    await settle(sender, 1)
    await sender.stop()
    assert route.call_count == 2 and sender.sent == 1
