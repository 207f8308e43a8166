"""Switchboard in child processes, for tests that kill one with SIGKILL.

``SplitServers`` writes the configs of the split deployment (DESIGN "Deployment modes":
``serve --role messages`` and ``serve --role hub``, the hub pointing at the service's
URL; or several replicas of the service and several hubs) and starts them as
``ServerProcess``es. ``kill()`` sends SIGKILL: no shutdown, no
flush, as a crash or an OOM killer does; ``start()`` again brings the same role back on
the same port, data directory and database, so whatever the killed process left on
disk (the hub's outbox journal, the service's rows) is what the new one finds.

Each child writes its output to a log file whose tail goes into failure messages, and
gets SIGTERM from the kernel if the test process itself dies without stopping it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from signaling.app import HUB_WEBSOCKET_PATH, MESSAGES_WEBSOCKET_PATH
from tests.integration.balancer import Balancer

__all__ = ["DOMAIN", "ServerProcess", "SplitServers", "free_port", "stopping"]

HOST = "127.0.0.1"
DOMAIN = "faults.test"
ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies (PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


class ServerProcess:
    """``python -m signaling.cli serve --role ROLE`` on a fixed loopback port."""

    def __init__(
        self, role: str, config: Path, data_dir: Path, port: int, log: Path, *extra: str
    ) -> None:
        self.role = role
        self.port = port
        self.log = log
        self.command = [
            sys.executable,
            "-m",
            "signaling.cli",
            "serve",
            "--role",
            role,
            "--config",
            str(config),
            "--data-dir",
            str(data_dir),
            "--host",
            HOST,
            "--port",
            str(port),
            *extra,
        ]
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def spawn(self) -> None:
        """Start the process and return at once (``start`` also waits until it listens)."""
        assert not self.running, f"{self.role} already runs"
        self.starts += 1
        with self.log.open("ab") as log:
            log.write(f"--- start {self.starts} of {self.role}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )

    async def start(self) -> None:
        """Spawn the process and wait until it accepts connections."""
        self.spawn()
        await self.listening()

    async def listening(self, timeout: float = START_TIMEOUT) -> None:
        """Until the port accepts TCP: the server binds before it serves, but a client's
        handshake waits in the kernel's queue until it does."""
        assert self.process is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            assert self.process.poll() is None, f"{self.role} exited early:\n{self.log_tail()}"
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection(HOST, self.port)
                writer.close()
                return
            assert loop.time() < deadline, f"{self.role} did not start:\n{self.log_tail()}"
            await asyncio.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush."""
        assert self.process is not None and self.running, f"{self.role} is not running"
        self.process.kill()
        self.process.wait()
        self.kills += 1

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


class Stoppable(Protocol):
    def stop(self) -> None: ...


@contextlib.contextmanager
def stopping(*processes: Stoppable) -> Iterator[None]:
    try:
        yield
    finally:
        for process in processes:
            process.stop()


@dataclass(frozen=True)
class Account:
    sip: str
    password: str


class SplitServers:
    """A messages service and a hub in two processes, sharing one tenant ``faults.test``
    whose users alice and bob hold the ``messages`` licence.

    With ``replicas`` > 1 (PostgreSQL only), that many service processes named ``a``,
    ``b``, … run with ``messages.replicas`` on one database (docs/protocol.md 12.41), a
    ``Balancer`` in front of them. ``links`` says where each hub's ``messages.url``
    points: the index of a replica, or ``None`` for the balancer (the service itself
    when there is one replica). ``service`` and ``hub`` are the first of each.

    Limits are raised out of the way (a fault test is about storage, not rate limits),
    the hub's link reconnects within 50-250 ms, and trace flags are off."""

    def __init__(
        self,
        directory: Path,
        database: str,
        *,
        replicas: int = 1,
        links: tuple[int | None, ...] = (None,),
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.database = database
        self._secret = secrets.token_hex(16)
        self.alice = Account("alice", secrets.token_hex(12))
        self.bob = Account("bob", secrets.token_hex(12))
        self._common = _common_settings(self.alice, self.bob)
        service_config = directory / "service.toml"
        service_config.write_text(
            "\n".join(
                [
                    "[messages]",
                    f"password = {json.dumps(self._secret)}",
                    f"database = {json.dumps(database)}",
                    *(["replicas = true"] if replicas > 1 else []),
                    *self._common,
                ]
            )
        )
        self.services = [self._service(service_config, n, replicas) for n in range(replicas)]
        self.service = self.services[0]
        self.balancer = (
            Balancer(free_port(), [s.port for s in self.services]) if replicas > 1 else None
        )
        self.hubs = [self._hub(n, link) for n, link in enumerate(links)]
        self.hub = self.hubs[0]

    def _service(self, config: Path, number: int, replicas: int) -> ServerProcess:
        if replicas == 1:
            return ServerProcess(
                "messages",
                config,
                self.directory / "service",
                free_port(),
                self.directory / "service.log",
            )
        name = "abcdefgh"[number]
        return ServerProcess(
            "messages",
            config,
            self.directory / f"service-{name}",
            free_port(),
            self.directory / f"service-{name}.log",
            "--node",
            name,
        )

    def _hub(self, number: int, link: int | None) -> ServerProcess:
        port = self.services[link].port if link is not None else self.services[0].port
        if link is None and self.balancer is not None:
            port = self.balancer.port
        suffix = "" if number == 0 else str(number + 1)
        config = self.directory / f"hub{suffix}.toml"
        service_url = f"ws://{HOST}:{port}{MESSAGES_WEBSOCKET_PATH}"
        config.write_text(
            "\n".join(
                [
                    "[messages]",
                    f"password = {json.dumps(self._secret)}",
                    f"url = {json.dumps(service_url)}",
                    'reconnect_min = "50ms"',
                    'reconnect_max = "250ms"',
                    *self._common,
                ]
            )
        )
        return ServerProcess(
            "hub",
            config,
            self.directory / f"hub{suffix}",
            free_port(),
            self.directory / f"hub{suffix}.log",
        )

    @property
    def processes(self) -> list[ServerProcess]:
        return [*self.hubs, *self.services]

    @property
    def hub_url(self) -> str:
        return self.url_of(self.hub)

    @property
    def hub_http(self) -> str:
        return f"http://{HOST}:{self.hub.port}"

    def url_of(self, hub: ServerProcess) -> str:
        return f"ws://{HOST}:{hub.port}{HUB_WEBSOCKET_PATH}"

    async def start(self) -> None:
        if self.balancer is not None:
            await self.balancer.start()
        for process in [*self.services, *self.hubs]:
            await process.start()

    def stop(self) -> None:
        for process in self.processes:
            process.stop()
        if self.balancer is not None:
            self.balancer.stop()

    def logs(self) -> str:
        return "\n".join(
            f"== {process.log.stem} log (last lines)\n{process.log_tail()}"
            for process in self.processes
        )


def _common_settings(*accounts: Account) -> list[str]:
    lines = [
        "[server]",
        'node = "switchboard"',
        "[login]",
        f'default_domain = "{DOMAIN}"',
        "throttle_failures = 1000",
        "[limits]",
        "rate = 1000000.0",
        "burst = 1000000",
        "[trace]",
        "flags = []",
    ]
    for account in accounts:
        lines += [
            f'[tenants."{DOMAIN}".users.{account.sip}]',
            f"password = {json.dumps(account.password)}",
            'licences = ["messages"]',
        ]
    return [*lines, ""]
