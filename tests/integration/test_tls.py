"""TLS without a proxy (``[server] tls_cert`` / ``tls_key``): ``switchboard serve`` with a
self-signed certificate made here speaks HTTPS and wss:// on its port, says so in its
banner, sends Strict-Transport-Security with its pages, reaches its own messages service
over wss://, and a real client logs in, registers and chats over wss://."""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from signaling.appwebsocket.client import AppWebsocketClient
from tests.conftest import REQUIRE_SERVICES_ENV
from tests.integration.processes import ROOT, free_port

DEADLINE = 60.0


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made with the ``openssl`` command."""
    if shutil.which("openssl") is None:
        if os.environ.get(REQUIRE_SERVICES_ENV) == "1":
            pytest.fail("the openssl command is required")
        pytest.skip("no openssl command on this machine")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=DEADLINE,
    )
    return cert, key


async def test_the_server_speaks_tls_and_a_client_chats_over_wss(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    config = tmp_path / "site.toml"
    config.write_text(f'[server]\ntls_cert = "{cert}"\ntls_key = "{key}"\n')
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "signaling.cli",
        "serve",
        "--config",
        str(config),
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path / "data"),
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    trusted = ssl.create_default_context(cafile=str(cert))  # the client trusts this one
    try:
        assert process.stdout is not None
        banner = []
        while not any("--to" in line for line in banner):
            banner.append((await asyncio.wait_for(process.stdout.readline(), DEADLINE)).decode())
        text = "".join(banner)
        hub_url = f"wss://127.0.0.1:{port}/PBX0/APPS/websocket"
        assert f"listening on https://127.0.0.1:{port}" in text, text
        assert f"AppWebsocket (PbxSignal, PbxMessages): {hub_url}" in text, text
        assert f"--url {hub_url}" in text and "ws://" not in text.replace("wss://", ""), text

        async with httpx.AsyncClient(verify=trusted) as https:
            page = await https.get(f"https://127.0.0.1:{port}/")
            assert page.headers["strict-transport-security"] == "max-age=31536000"
            # the hub reaches its own messages service over wss:// (its link comes up)
            deadline = asyncio.get_running_loop().time() + DEADLINE
            while True:
                checks = (await https.get(f"https://127.0.0.1:{port}/healthz")).json()["checks"]
                if checks["messages_link"] == "up":
                    break
                assert asyncio.get_running_loop().time() < deadline, checks
                await asyncio.sleep(0.05)
        async with httpx.AsyncClient() as plain:
            with pytest.raises(httpx.TransportError):
                await plain.get(f"http://127.0.0.1:{port}/healthz")  # no clear text

        alice = await AppWebsocketClient.connect(hub_url, ssl=trusted)
        bob = await AppWebsocketClient.connect(hub_url, ssl=trusted)
        for client, sip in ((alice, "alice"), (bob, "bob")):
            result = await client.login(password=f"{sip}-demo", sip=sip, timeout=DEADLINE)
            assert result["domain"] == "example.com"
            await client.send(
                {"api": "PbxSignal", "mt": "Register", "src": "r", "flags": "NO_MEDIA_CALL"}
            )
            assert (await client.recv(DEADLINE))["mt"] == "RegisterResult"
        setup = {"type": "setup", "channel": 0, "cd": {"sip": "bob"}, "fty": [{"type": "im_setup"}]}
        await alice.send({"api": "PbxSignal", "mt": "Signaling", "call": 1, "sig": setup})
        offer = await _next_signal(bob, "setup")
        assert offer["sig"]["cg"]["sip"] == "alice"
        await alice.close()
        await bob.close()
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), DEADLINE) == 0


async def _next_signal(client: AppWebsocketClient, kind: str) -> dict[str, object]:
    while True:
        message = await client.recv(DEADLINE)
        if message.get("mt") == "Signaling" and message["sig"]["type"] == kind:
            return message


def test_half_a_tls_setting_or_a_missing_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path)
    for toml, setting in (
        (f'[server]\ntls_cert = "{cert}"\n', "server.tls_key: required"),
        (f'[server]\ntls_cert = "{cert}"\ntls_key = "{tmp_path}/nokey.pem"\n', "server.tls_key"),
    ):
        config = tmp_path / "site.toml"
        config.write_text(toml)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "signaling.cli",
                "serve",
                "--config",
                str(config),
                "--port",
                "0",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            stdin=subprocess.DEVNULL,
        )
        assert result.returncode == 2 and result.stdout == "", result
        assert result.stderr.startswith(f"switchboard: configuration error: {setting}"), result
        assert len(result.stderr.splitlines()) == 1, result
