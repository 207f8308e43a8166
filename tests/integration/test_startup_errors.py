"""``switchboard serve`` as an operator starts it: a start-up that cannot succeed says
which setting and why in one line on stderr and exits 2, with no banner and no
traceback; a good one prints its banner only once it answers (docs/operations.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.conftest import POSTGRES_DEFAULT, POSTGRES_ENV, REQUIRE_SERVICES_ENV
from tests.integration.processes import ROOT, free_port

DEADLINE = 60.0
SERVE = (sys.executable, "-m", "signaling.cli", "serve")


def serve(tmp_path: Path, config: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``switchboard serve`` run to its end (these never get to serve)."""
    path = tmp_path / "site.toml"
    path.write_text(config)
    return subprocess.run(
        [*SERVE, "--config", str(path), "--port", "0", "--data-dir", str(tmp_path / "data"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        stdin=subprocess.DEVNULL,
    )


def assert_one_line(result: subprocess.CompletedProcess[str], setting: str, reason: str) -> None:
    assert result.returncode == 2, result
    assert result.stdout == "", result  # no banner
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("switchboard: "), lines
    assert f"{setting}: " in lines[0] and reason in lines[0], lines
    assert "Traceback" not in result.stderr


def postgres_with(database: str) -> str:
    server = urlsplit(os.environ.get(POSTGRES_ENV) or POSTGRES_DEFAULT)
    return urlunsplit(server._replace(path=f"/{database}"))


def database_config(url: str) -> str:
    return f"[messages]\ndatabase = {json.dumps(url)}\n"


def test_a_postgres_database_that_does_not_exist(tmp_path: Path) -> None:
    name = f"switchboard_missing_{secrets.token_hex(4)}"
    result = serve(tmp_path, database_config(postgres_with(name)))
    unreachable = "connection refused" in result.stderr
    if unreachable and os.environ.get(REQUIRE_SERVICES_ENV) != "1":
        pytest.skip(f"PostgreSQL at ${POSTGRES_ENV} unreachable")
    assert_one_line(result, "messages.database", f'database "{name}" does not exist')


def test_a_database_port_nobody_listens_on(tmp_path: Path) -> None:
    url = f"postgres://postgres@127.0.0.1:{free_port()}/switchboard"
    result = serve(tmp_path, database_config(url))
    assert_one_line(result, "messages.database", "connection refused")


def test_replicas_of_the_service_on_sqlite(tmp_path: Path) -> None:
    result = serve(tmp_path, "[messages]\nreplicas = true\n", "--role", "messages")
    assert_one_line(result, "messages.replicas", "needs a postgres:// messages.database")


def shared_files_config(database: str, folder: str = "") -> str:
    """A messages-service replica keeping file buffers in ``cluster.database``."""
    lines = ["[messages]", 'password = "secret"', "[cluster]", f"database = {json.dumps(database)}"]
    if folder:
        lines += ["[files]", f"dir = {json.dumps(folder)}"]
    return "\n".join([*lines, ""])


def test_shared_file_buffers_without_a_shared_folder(tmp_path: Path) -> None:
    config = shared_files_config(postgres_with("switchboard"))
    result = serve(tmp_path, config, "--role", "messages")
    assert_one_line(result, "files.dir", "required when cluster.database is set")


def test_shared_file_buffers_on_sqlite(tmp_path: Path) -> None:
    config = shared_files_config(f"sqlite://{tmp_path / 'files.sqlite3'}", str(tmp_path))
    result = serve(tmp_path, config, "--role", "messages")
    assert_one_line(result, "cluster.database", "must be PostgreSQL")


def test_shared_file_buffers_on_a_port_nobody_listens_on(tmp_path: Path) -> None:
    url = f"postgres://postgres:hidden@127.0.0.1:{free_port()}/switchboard"
    result = serve(tmp_path, shared_files_config(url, str(tmp_path)), "--role", "messages")
    assert_one_line(result, "cluster.database", "connection refused")
    assert "hidden" not in result.stderr


def cluster_config(database: str | None) -> str:
    """A cluster node's config (Redis on a port nobody listens on: the database is
    checked first, and the node never gets that far), volatile chat (a node serving the
    messages service itself would need files.dir first)."""
    lines = ["[messages]", "enabled = false", "[cluster]"]
    lines.append(f'redis = "redis://127.0.0.1:{free_port()}/0"')
    if database is not None:
        lines.append(f"database = {json.dumps(database)}")
    return "\n".join([*lines, ""])


def test_a_cluster_node_without_a_database(tmp_path: Path) -> None:
    result = serve(tmp_path, cluster_config(None), "--node", "a")
    assert_one_line(result, "cluster.database", "required when cluster.redis is set")


def test_a_cluster_node_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'directory.sqlite3'}"
    result = serve(tmp_path, cluster_config(url), "--node", "a")
    assert_one_line(result, "cluster.database", "must be PostgreSQL")


def test_a_cluster_database_port_nobody_listens_on(tmp_path: Path) -> None:
    url = f"postgres://postgres@127.0.0.1:{free_port()}/switchboard"
    result = serve(tmp_path, cluster_config(url), "--node", "a")
    assert_one_line(result, "cluster.database", "connection refused")


def test_a_cluster_database_that_does_not_exist(tmp_path: Path) -> None:
    name = f"switchboard_missing_{secrets.token_hex(4)}"
    result = serve(tmp_path, cluster_config(postgres_with(name)), "--node", "a")
    unreachable = "connection refused" in result.stderr
    if unreachable and os.environ.get(REQUIRE_SERVICES_ENV) != "1":
        pytest.skip(f"PostgreSQL at ${POSTGRES_ENV} unreachable")
    assert_one_line(result, "cluster.database", f'database "{name}" does not exist')


def test_a_malformed_config_value(tmp_path: Path) -> None:
    result = serve(tmp_path, '[limits]\nrate = "fast"\n')
    assert_one_line(result, "limits.rate", "expected a number")


def test_an_unknown_trace_flag_found_while_building_the_app(tmp_path: Path) -> None:
    result = serve(tmp_path, '[trace]\nflags = ["no-such-flag"]\n')
    assert_one_line(result, "trace.flags", "no-such-flag")


def test_a_port_in_use(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        path = tmp_path / "site.toml"
        path.write_text("")
        result = subprocess.run(
            [*SERVE, "--config", str(path), "--port", str(port), "--data-dir", str(tmp_path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=DEADLINE,
        )
    assert_one_line(result, "server.port", "address already in use")


async def test_the_banner_comes_once_the_server_answers_and_names_its_port(
    tmp_path: Path,
) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "signaling.cli",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path / "data"),
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        first = await asyncio.wait_for(process.stdout.readline(), DEADLINE)
        assert first.decode().startswith("Switchboard "), first
        # Printed after start-up: the server answers now, the messages service included.
        async with httpx.AsyncClient() as http:
            health = await http.get(f"http://127.0.0.1:{port}/healthz")
        assert health.status_code == 200, health.text
        assert health.json()["checks"]["database"] == "up", health.text
        lines = []
        while not any("--to" in line for line in lines):
            lines.append((await asyncio.wait_for(process.stdout.readline(), DEADLINE)).decode())
        *_, waiting, calling = (line.split() for line in lines)
        program = waiting[0]
        assert _runnable(program), program
        url = f"ws://127.0.0.1:{port}/PBX0/APPS/websocket"
        assert waiting[1:4] == ["chat", "--url", url], waiting
        assert calling[:4] == waiting[:4] and calling[-2:] == ["--to", waiting[5]], calling
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), DEADLINE) == 0


def _runnable(program: str) -> bool:
    """A program path as the banner prints it: relative to the checkout, or absolute."""
    return (ROOT / program).is_file() and os.access(ROOT / program, os.X_OK)
