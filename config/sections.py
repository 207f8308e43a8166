"""The typed configuration the rest of Switchboard reads, one frozen dataclass per section.

The classes are frozen so a running hub can share one ``Config`` between every component
without anyone changing it underneath the others, and slotted because thousands of
connections read these values on every message. Tests and the CLI derive variants with
``dataclasses.replace``. Defaults here are the same as in ``default.toml`` (a test checks it).

This is the schema of the plain sections, written once: each option's annotated type
(``values``) says how its TOML value and its environment variable are read, and the
loader's option table is derived from these classes (``schema``).

Passwords are declared ``repr=False``: a ``Config`` is printed in logs, banners and test
failures, and none of those may ever show a secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .values import (
    Count,
    DatabaseUrl,
    Duration,
    Flag,
    HttpUrl,
    LogFormat,
    Names,
    OptionalText,
    PathText,
    Port,
    PositiveCount,
    PositiveDuration,
    PositiveRate,
    PositiveSize,
    RedisUrl,
    Size,
    Text,
    WsUrl,
)

__all__ = [
    "AdminConfig",
    "AppConfig",
    "ClusterConfig",
    "Config",
    "FilesConfig",
    "LimitsConfig",
    "LoginConfig",
    "MessagesConfig",
    "PresenceConfig",
    "QueueConfig",
    "ServerConfig",
    "SignalingConfig",
    "SupportConfig",
    "TenantAdmin",
    "TenantConfig",
    "TraceConfig",
    "UserConfig",
    "WebhooksConfig",
]


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Where the HTTP/WebSocket server listens and keeps its files."""

    host: Text = "127.0.0.1"
    port: Port = 8080  # 0..65535 (0 = pick a free port)
    data_dir: PathText = Path("./data")
    node: Text = "switchboard"  # this node's name, sent as "pbx" in PbxInfo
    dns: OptionalText = ""  # the DNS name clients reach this server by, sent as "pbxDns" in PbxInfo
    log_format: LogFormat = "text"  # "text" lines or "json" (one object per line)
    # TLS without a proxy: PEM certificate chain and its private key; both empty = plain HTTP
    tls_cert: OptionalText = ""
    tls_key: OptionalText = ""


@dataclass(frozen=True, slots=True)
class LoginConfig:
    """How long a login may take and how hard a password may be guessed."""

    challenge_ttl: PositiveDuration = 30.0  # seconds a challenge is valid
    timeout: PositiveDuration = 20.0  # close 4001 if not logged in by then
    # Failed-login throttle (PROTOCOL §3.6, docs/protocol.md §12.22):
    # wrong passwords of one (address, account) before back-off
    throttle_failures: PositiveCount = 5
    throttle_window: PositiveDuration = 600.0  # how long a failure is remembered
    throttle_delay: PositiveDuration = 1.0  # a pair's first lock, doubling per further failure
    throttle_max_delay: PositiveDuration = 30.0  # the longest lock
    throttle_account_failures: PositiveCount = 20  # per account from anywhere, refilled per window
    # per address for any account, refilled per window
    throttle_address_failures: PositiveCount = 100
    throttle_keys: PositiveCount = 100_000  # entries kept of each kind (pairs, accounts, addresses)
    default_domain: Text = "example.com"  # tenant for the short login form (only sip + digest)


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """What one connection may cost the hub before it is closed."""

    max_frame: PositiveSize = 256 * 1024  # bytes per WebSocket frame, bigger -> close 1009
    max_message: PositiveSize = 64 * 1024  # bytes of joined im_message data
    max_bad_messages: PositiveCount = 10  # consecutive bad messages before close 4002
    rate: PositiveRate = 20.0  # messages per second per connection (token bucket refill)
    burst: PositiveCount = 40  # bucket size
    rate_close_after: PositiveCount = 20  # consecutive rate-limited messages before close 4004
    idle_timeout: PositiveDuration = 120.0  # close 4006 after this long without a frame or a pong
    send_queue: PositiveCount = 1024  # frames queued toward one connection before close 4008
    compression: Flag = False  # permessage-deflate for clients that offer it (~40 KiB each)


@dataclass(frozen=True, slots=True)
class SignalingConfig:
    """Timers and memory bounds of a chat call."""

    ring_timeout: PositiveDuration = 60.0  # no conn by then -> rel cause 19
    typing_ttl: PositiveDuration = 6.0  # typing not renewed by then -> hub sends typing:false
    resume_grace: Duration = 60.0  # a dropped connection's registration and calls live this long
    transcript_messages: Count = 200  # messages of a live call kept for resume and transfer
    transcript_bytes: Size = 1024 * 1024  # ... and their bytes, at most
    hold_messages: Count = 32  # messages held before conn, at most
    hold_bytes: Size = 256 * 1024  # bytes held before conn, at most
    max_ids: PositiveCount = 1024  # client message ids remembered per call for idempotent retries
    sender_ids: Count = 50_000  # licensed message ids remembered across calls, per hub (§4.6)
    max_calls: PositiveCount = 64  # calls one registration may be part of at once; more -> cause 47


@dataclass(frozen=True, slots=True)
class MessagesConfig:
    """The licensed messages service (PROTOCOL §6, §7) and the hub's link to it."""

    enabled: Flag = True  # false: every user chats volatile, PbxMessages is "unavailable"
    url: WsUrl = ""  # the service's AppWebsocket; empty = the one this process serves
    password: OptionalText = field(default="", repr=False)  # App object "messages"; empty = random
    # empty = SQLite file in server.data_dir; or sqlite:// / postgres:// URL
    database: DatabaseUrl = ""
    # Posts written in one transaction, at most: a commit writes every index page the
    # batch touched, so under load a bigger batch costs less a Post (docs/benchmarks.md)
    batch_max: PositiveCount = 2048
    # first reconnect delay of the hub's link (then doubled, jittered)
    reconnect_min: PositiveDuration = 0.2
    reconnect_max: PositiveDuration = 10.0  # longest reconnect delay
    keepalive: PositiveDuration = 20.0  # the hub sends KeepAlive this often on an idle link
    # a forwarded request unanswered by then gets "unavailable"
    request_timeout: PositiveDuration = 10.0
    # a client message id stays a key per sender this long
    idempotency_ttl: PositiveDuration = 24 * 3600.0
    # true: one of several service replicas on one PostgreSQL, telling each other's hubs
    replicas: Flag = False


@dataclass(frozen=True, slots=True)
class FilesConfig:
    """File buffers for attachments (PROTOCOL §8)."""

    dir: OptionalText = ""  # empty = the folder "files" in server.data_dir
    url: HttpUrl = ""  # base of upload/download urls; empty = paths on the server asked
    max_size: PositiveSize = 25 * 1024 * 1024  # bytes per file, at most
    temp_ttl: PositiveDuration = 600.0  # seconds a temporary buffer (and its upload url) lives
    quota: PositiveSize = 1024 * 1024 * 1024  # bytes of buffers one user may hold
    gc_interval: PositiveDuration = 60.0  # seconds between garbage collections


@dataclass(frozen=True, slots=True)
class SupportConfig:
    """Live support (PROTOCOL §9): visitors, queue timers."""

    visitor_ttl: PositiveDuration = 24 * 3600.0  # a visitor account unused this long is deleted
    visitors_per_hour: PositiveCount = 20  # visitor accounts one client address may make per hour
    idle_warn: PositiveDuration = 90.0  # a support chat silent this long gets a warning
    idle_close: PositiveDuration = 120.0  # ... and this long is released with cause 102
    wait_timeout: PositiveDuration = 300.0  # a chat no agent took by then is released with cause 19


@dataclass(frozen=True, slots=True)
class PresenceConfig:
    """What presence says of visitors besides online or not (docs 12.37)."""

    recent_window: PositiveDuration = 300.0  # a visitor seen this long ago still shows as recent


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """Several hub nodes sharing one Redis (SCALE.md, docs/operations.md "Running several
    nodes"); ``server.node`` names this one."""

    redis: RedisUrl = field(default="", repr=False)  # empty = one process, no Redis at all
    # PostgreSQL the nodes share (admin directory changes); required when redis is set
    database: DatabaseUrl = field(default="", repr=False)
    lease: PositiveDuration = 10.0  # a node whose lease is not renewed by then is dead
    heartbeat: PositiveDuration = 2.0  # how often a node renews its lease and checks the others
    inbox_max: PositiveCount = 100_000  # entries kept in a node's inbox stream, about
    answer_wait: PositiveDuration = 2.0  # a RegisterResult waits for Redis this long at most


@dataclass(frozen=True, slots=True)
class WebhooksConfig:
    """Events POSTed to the operator (PROTOCOL §9.6)."""

    url: HttpUrl = ""  # where events go; empty = no webhooks
    secret: OptionalText = field(default="", repr=False)  # HMAC-SHA256 key of the signature header
    timeout: PositiveDuration = 5.0  # seconds one POST may take
    attempts: PositiveCount = 4  # tries per event (network errors, 5xx, 429)
    backoff_min: PositiveDuration = 1.0  # first delay between tries, then doubled
    backoff_max: PositiveDuration = 30.0
    queue: PositiveCount = 1000  # events waiting at most; beyond, new ones are dropped


@dataclass(frozen=True, slots=True)
class AdminConfig:
    """The operator's login to ``/admin`` and ``/debug.xml`` (PROTOCOL §10)."""

    user: Text = "admin"
    password: OptionalText = field(default="", repr=False)  # empty = the admin API refuses everyone
    metrics_login: Flag = False  # true: /metrics needs the server admin's login too
    tenants: tuple[TenantAdmin, ...] = ()  # admins who see and change one tenant only


@dataclass(frozen=True, slots=True)
class TenantAdmin:
    """An admin account limited to one tenant (``[admin.tenants."<domain>"]``)."""

    domain: str
    user: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class TraceConfig:
    """Trace flags at start and where records go (PROTOCOL §10.1); flags change at run
    time through the admin API."""

    flags: Names = ("app", "appwebsocket")  # subsystems traced from the start
    buffer: PositiveCount = 10_000  # records kept in memory (the newest)
    file: OptionalText = ""  # also write records to this file, rotated; empty = memory only
    file_max: PositiveSize = 10 * 1024 * 1024  # bytes of one trace file before it is rotated
    file_count: PositiveCount = 3  # rotated files kept


@dataclass(frozen=True, slots=True)
class UserConfig:
    """A person who logs in with sip + password; ``licences`` unlock features ("messages")."""

    sip: str
    dn: str
    num: str
    password: str = field(repr=False)  # repr must NEVER show a password
    licences: frozenset[str] = frozenset()
    max_chats: int = 3  # support chats an agent has at once, taken or ringing (PROTOCOL §9.2)
    app: bool = False  # an App object seen as a device of its own (docs 12.24), not a person
    role: str = ""  # "supervisor": closes and transfers any taken chat of its queues (docs 12.34)


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """A support queue (PROTOCOL §9.2): callers reach it by its sip, its agents answer."""

    sip: str
    dn: str
    agents: tuple[str, ...] = ()  # user sips of the tenant
    take_on_write: bool = False  # an agent writing into a chat ringing for them takes it (12.34)


@dataclass(frozen=True, slots=True)
class AppConfig:
    """An App object: a bot, a service, an operator console, logging in under its own name.

    With "PbxSignal" among its ``apis`` it is also a device of its own name: it registers,
    is called by its name or ``num`` and may hold ``licences`` as a user does (docs 12.24)."""

    name: str
    password: str = field(repr=False)
    dn: str = ""
    act_for: frozenset[str] = frozenset()  # user sips it may act for; "*" = any user of the tenant
    apis: tuple[str, ...] = ()  # PBX APIs enabled, e.g. ("PbxSignal",)
    num: str = ""  # its number, unique among the tenant's users and App objects
    licences: frozenset[str] = frozenset()  # as a user's, e.g. "messages"


@dataclass(frozen=True, slots=True)
class TenantConfig:
    """One domain: its users and App objects share one namespace and never see other tenants."""

    domain: str
    users: tuple[UserConfig, ...] = ()
    apps: tuple[AppConfig, ...] = ()
    queues: tuple[QueueConfig, ...] = ()
    demo: bool = False  # true marks a tenant whose passwords are public demo values
    emoticons: tuple[tuple[str, str], ...] = ()  # (shortcode, image url path on this server)
    # origins ("https://shop.example") whose pages may make this tenant's visitors; empty = any
    widget_origins: tuple[str, ...] = ()
    # what PbxMessages DeleteChat removes: "own" (the deleter's copy) or "both" sides' copies
    delete_chat: str = "own"


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration, as ``load_config`` returns it."""

    server: ServerConfig = ServerConfig()
    login: LoginConfig = LoginConfig()
    limits: LimitsConfig = LimitsConfig()
    signaling: SignalingConfig = SignalingConfig()
    messages: MessagesConfig = MessagesConfig()
    files: FilesConfig = FilesConfig()
    trace: TraceConfig = TraceConfig()
    admin: AdminConfig = AdminConfig()
    webhooks: WebhooksConfig = WebhooksConfig()
    support: SupportConfig = SupportConfig()
    presence: PresenceConfig = PresenceConfig()
    cluster: ClusterConfig = ClusterConfig()
    tenants: tuple[TenantConfig, ...] = ()

    def tenant(self, domain: str) -> TenantConfig | None:
        """The tenant configured for ``domain``, or None; there is no fallback to a default."""
        return next((tenant for tenant in self.tenants if tenant.domain == domain), None)
