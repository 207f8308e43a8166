"""``/metrics`` of a messages service run on its own (``--role messages``)."""

from __future__ import annotations

import functools
from dataclasses import replace

import httpx

from signaling.app import create_app
from tests.messages_service.support import chat_post, running_service, service_config

serve_role = functools.partial(create_app, role="messages")


def figure(text: str, name: str) -> int:
    """The value of the sample ``name`` (no labels) in Prometheus text."""
    values = [line.split()[1] for line in text.splitlines() if line.split()[:1] == [name]]
    assert len(values) == 1, (name, text)
    return int(values[0])


async def test_the_service_shows_its_hubs_and_stored_posts(sqlite_url: str) -> None:
    async with running_service(service_config(sqlite_url), serve_role) as running:
        async with httpx.AsyncClient(base_url=running.http) as http:
            before = (await http.get("/metrics")).text
            assert figure(before, "switchboard_service_hubs") == 0
            assert figure(before, "switchboard_service_posts_total") == 0
            hub = await running.hub()
            for key in range(1, 4):
                answer = await hub.post(key, **chat_post("alice", "bob", key))
                assert answer["mt"] == "PostResult", answer
            answer = await http.get("/metrics")
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert figure(answer.text, "switchboard_service_hubs") == 1
        assert figure(answer.text, "switchboard_service_posts_total") == 3
        assert figure(answer.text, "switchboard_service_batches_total") >= 1
        assert figure(answer.text, "switchboard_service_refused_total") == 0
        assert "switchboard_service_replicas_up" not in answer.text  # no replicas


async def test_metrics_login_asks_for_the_server_admin(sqlite_url: str) -> None:
    config = service_config(sqlite_url)
    admin = replace(config.admin, metrics_login=True, password="metrics-admin-secret")
    async with (
        running_service(replace(config, admin=admin), serve_role) as running,
        httpx.AsyncClient(base_url=running.http) as http,
    ):
        refused = await http.get("/metrics")
        wrong = await http.get("/metrics", auth=("admin", "wrong"))
        allowed = await http.get("/metrics", auth=("admin", "metrics-admin-secret"))
    assert refused.status_code == 401 and refused.json()["code"] == "forbidden"
    assert wrong.status_code == 401
    assert allowed.status_code == 200
    assert figure(allowed.text, "switchboard_service_hubs") == 0
