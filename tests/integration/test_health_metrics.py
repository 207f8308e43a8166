"""``/healthz`` readiness and ``/metrics`` counting what a scripted session did."""

from __future__ import annotations

import gc
import re
from dataclasses import replace

import httpx

from config import Config
from tests.support import RunningServer, connected_pair, make_config, running_server

ADMIN = ("admin", "metrics-admin-secret")


def admin_config(*, metrics_login: bool = False) -> Config:
    config = make_config()
    admin = replace(config.admin, password=ADMIN[1], metrics_login=metrics_login)
    return replace(config, admin=admin)


def sample(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in metrics"
    return float(match.group(1))


async def test_metrics_count_a_scripted_session() -> None:
    async with running_server(admin_config()) as server:
        await server.service_ready()
        alice, bob, number = await connected_pair(server)
        for index in range(3):
            await alice.say(1, f"message {index}")
            await bob.fty(number)
        await bob.client.send_text("{not json")
        assert (await bob.next())["code"] == "bad_json"
        await alice.signal(7, {"type": "conn"})  # no such call: bad_state
        assert (await alice.next())["code"] == "bad_state"
        gc.collect()  # the server runs in this process: its hook times this one too
        async with httpx.AsyncClient(base_url=server.http, timeout=10) as http:
            answer = await http.get("/metrics")  # PROTOCOL §2: like /healthz, no login
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
        text = answer.text
        assert sample(text, "switchboard_connections") == 2
        assert sample(text, "switchboard_registrations") == 2
        assert sample(text, "switchboard_calls") == 1
        assert sample(text, "switchboard_messages_total") == 3
        assert sample(text, 'switchboard_errors_total{code="bad_json"}') == 1
        assert sample(text, 'switchboard_errors_total{code="bad_state"}') == 1
        frames = sample(text, "switchboard_frame_seconds_count")
        assert frames >= 3 + 2 + 4  # the messages, the bad frames, logins and registrations
        assert sample(text, 'switchboard_frame_seconds_bucket{le="+Inf"}') == frames
        assert "# TYPE switchboard_frame_seconds histogram" in text
        assert "# TYPE switchboard_gc_pause_seconds histogram" in text
        full = sample(text, 'switchboard_gc_pause_seconds_count{generation="2"}')
        assert full >= 1
        assert sample(text, 'switchboard_gc_pause_seconds_bucket{generation="2",le="+Inf"}') == full


async def test_healthz_reports_a_link_that_is_down(server: RunningServer) -> None:
    await server.service_ready()
    link = server.hub.link
    assert link is not None
    await link.stop()  # as if the service had gone away
    link.up = False
    async with httpx.AsyncClient(base_url=server.http, timeout=10) as http:
        alive = await http.get("/healthz")
        ready = await http.get("/healthz", params={"ready": "1"})
    assert alive.status_code == 200
    assert alive.json() == {
        "status": "degraded",
        "checks": {"messages_link": "down", "database": "up"},
    }
    assert ready.status_code == 503


async def test_metrics_can_require_the_admin_login() -> None:
    async with (
        running_server(admin_config(metrics_login=True)) as server,
        httpx.AsyncClient(base_url=server.http, timeout=10) as http,
    ):
        assert (await http.get("/metrics")).status_code == 401
        assert (await http.get("/metrics", auth=ADMIN)).status_code == 200
