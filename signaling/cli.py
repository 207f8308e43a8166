"""``switchboard`` command line: ``serve`` runs the server, ``chat`` is a terminal client."""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from dataclasses import replace
from pathlib import Path

from config import Config, ConfigError, load_config

from .app import HUB_WEBSOCKET_PATH, MESSAGES_WEBSOCKET_PATH, create_app
from .core.switch import VERSION
from .tls import web_schemes

__all__ = ["main"]

DEFAULT_CHAT_URL = f"ws://127.0.0.1:8080{HUB_WEBSOCKET_PATH}"


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    from .chat_cli import INTERRUPTED, run_chat

    try:
        return asyncio.run(run_chat(args))
    except KeyboardInterrupt:  # Ctrl-C before the client set its own handler
        return INTERRUPTED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchboard", description="Switchboard messaging gateway"
    )
    parser.add_argument("--version", action="version", version=f"switchboard {VERSION}")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_serve(commands)
    _add_chat(commands)
    return parser


def _add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="run the server (hub and everything else)")
    serve.add_argument("--config", type=Path, help="TOML file over config/default.toml")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument("--data-dir", type=Path, help="where data is kept (default ./data)")
    serve.add_argument(
        "--node",
        help="this node's name (server.node): unique among the nodes of a cluster, and a "
        "messages-service replica's name",
    )
    serve.add_argument(
        "--role",
        choices=("all", "hub", "messages"),
        default="all",
        help="all: everything in one process (default); hub: the hub only, using the "
        "messages service at messages.url; messages: the messages service only",
    )


def _add_chat(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    chat = commands.add_parser(
        "chat",
        help="chat from a terminal",
        description="Log in, show what is waiting (licensed users), then chat: call --to "
        "or answer the first incoming chat. Each line typed is a message; Ctrl-D or Ctrl-C "
        "ends the chat.",
    )
    chat.add_argument(
        "--url",
        default=DEFAULT_CHAT_URL,
        help="the hub's AppWebsocket, as the server's banner shows it "
        f"(default {DEFAULT_CHAT_URL})",
    )
    chat.add_argument("--sip", required=True, help="your user name")
    chat.add_argument("--password", required=True, help="your password")
    chat.add_argument("--domain", default="", help="your tenant (default: the server's default)")
    chat.add_argument("--to", help="start a chat with this user; otherwise wait for one")
    chat.add_argument(
        "--history",
        type=int,
        default=10,
        metavar="N",
        help="with --to and the messages licence: show the last N messages with that user "
        "first (default 10; unread messages of every chat are always shown)",
    )


def _serve(args: argparse.Namespace) -> int:
    """Exit 0 after a stop by SIGINT or SIGTERM; 2 with one line on stderr when the
    server cannot start (a setting, and why; see signaling.startup); 130 on Ctrl-C during
    start-up. The banner is printed only once the server answers."""
    from .server import loop_factory, serve
    from .startup import HeldLog, startup_failure

    prepared = _prepare(args)
    if isinstance(prepared, int):
        return prepared
    config, sock = prepared
    log = HeldLog()
    ready = False

    def on_ready() -> None:
        nonlocal ready
        ready = True
        log.release()
        print(_banner(config, args.role), flush=True)

    try:
        app = create_app(config, role=args.role)
        # uvicorn's own choice of loop (uvloop when installed), as ``uvicorn.run`` makes.
        with asyncio.Runner(loop_factory=loop_factory(app, config)) as runner:
            runner.run(serve(app, config, sock, ready=on_ready))
    except KeyboardInterrupt:  # Ctrl-C before the server was up
        log.release()
        return 130
    except Exception as exc:
        failure = None if ready else startup_failure(exc, config.server.data_dir)
        if failure is None:
            log.release()
            raise
        log.discard()
        print(failure.line(), file=sys.stderr)
        return 2
    finally:
        log.release()
        sock.close()
    return 0


def _prepare(args: argparse.Namespace) -> tuple[Config, socket.socket] | int:
    """The configuration with its overrides and the listening socket, or the exit code
    (2, one line on stderr) when either cannot be had."""
    from tracing.logs import configure as configure_logging

    from .server import bound_socket
    from .startup import StartupFailure

    try:
        config = _with_overrides(load_config(args.config), args)
    except ConfigError as exc:
        print(f"switchboard: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.server.log_format)
    try:
        config.server.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = f"{(exc.strerror or str(exc)).lower()}: {config.server.data_dir}"
        print(StartupFailure("server.data_dir", reason).line(), file=sys.stderr)
        return 2
    try:
        sock = bound_socket(config.server.host, config.server.port)
    except OSError as exc:
        reason = (
            f"cannot listen on {config.server.host}:{config.server.port}: "
            f"{(exc.strerror or str(exc)).lower()}"
        )
        print(StartupFailure("server.port", reason).line(), file=sys.stderr)
        return 2
    # Port 0 picks a free port; the hub needs the real one to reach its own service.
    config = replace(config, server=replace(config.server, port=sock.getsockname()[1]))
    return config, sock


def _with_overrides(config: Config, args: argparse.Namespace) -> Config:
    server = config.server
    if args.host is not None:
        server = replace(server, host=args.host)
    if args.port is not None:
        server = replace(server, port=args.port)
    if args.data_dir is not None:
        server = replace(server, data_dir=args.data_dir)
    if args.node is not None:
        server = replace(server, node=args.node)
    return replace(config, server=server)


def _without_credentials(url: str) -> str:
    """A database URL fit for a banner: never print the password it may carry."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        return f"{scheme}://…@{rest.rpartition('@')[2]}"
    return url


def _banner(config: Config, role: str = "all") -> str:
    host, port = config.server.host, config.server.port
    shown = f"[{host}]" if ":" in host else host
    web, ws = web_schemes(config)
    lines = [f"Switchboard {VERSION} ({role}) listening on {web}://{shown}:{port}"]
    if role != "messages":
        lines.append(
            f"  hub AppWebsocket (PbxSignal, PbxMessages): {ws}://{shown}:{port}{HUB_WEBSOCKET_PATH}"
        )
    messages = config.messages
    if role == "messages" or (role == "all" and messages.enabled and not messages.url):
        database = _without_credentials(messages.database) or f"SQLite in {config.server.data_dir}"
        lines.append(
            f"  messages service: {ws}://{shown}:{port}{MESSAGES_WEBSOCKET_PATH} ({database})"
        )
        if messages.replicas:
            lines.append(f"  replica {config.server.node!r}, hearing the others through PostgreSQL")
    elif role == "hub" and messages.enabled:
        lines.append(f"  messages service at {messages.url}")
    lines.append(f"  data directory: {config.server.data_dir}")
    if role == "messages":
        return "\n".join(lines)
    if config.cluster.redis:
        redis = _without_credentials(config.cluster.redis)
        lines.append(f"  cluster node {config.server.node!r}, Redis at {redis}")
    for tenant in config.tenants:
        users = ", ".join(user.sip for user in tenant.users)
        lines.append(f"  tenant {tenant.domain}: {users}")
        if tenant.demo:
            lines.append(
                "    demo tenant: each password is <user>-demo (public, never use in production)"
            )
    lines += _try_a_chat(config, ws)
    return "\n".join(lines)


def _try_a_chat(config: Config, ws: str) -> list[str]:
    """The banner's lines that start a chat between two demo users, if there are two."""
    host, port = config.server.host, config.server.port
    demo = next(
        (tenant for tenant in config.tenants if tenant.demo and len(tenant.users) >= 2), None
    )
    if demo is None:
        return []
    first, second = demo.users[0].sip, demo.users[1].sip
    chat = f"{_program()} chat"
    # a certificate names the host clients use, not a loopback address
    url = _chat_url(config.server.dns if ws == "wss" and config.server.dns else host, port, ws)
    if url != DEFAULT_CHAT_URL:
        chat += f" --url {url}"
    return [
        "  try a chat in two more terminals:",
        f"    {chat} --sip {second} --password {second}-demo",
        f"    {chat} --sip {first} --password {first}-demo --to {second}",
    ]


def _chat_url(host: str, port: int, scheme: str = "ws") -> str:
    """Where a client on this machine reaches the hub: a wildcard address is not one."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}{HUB_WEBSOCKET_PATH}"


def _program() -> str:
    """How another terminal runs this ``switchboard``: the script beside this Python
    (``.venv/bin/switchboard`` from the checkout), shown relative to the working
    directory when it is inside it; without the script, ``python -m signaling.cli``."""
    bin_dir = Path(sys.executable).parent
    script = bin_dir / "switchboard"
    if not script.exists():
        return f"{_relative(Path(sys.executable))} -m signaling.cli"
    return _relative(script)


def _relative(path: Path) -> str:
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
