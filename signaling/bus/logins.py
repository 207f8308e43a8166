"""The cluster's login throttles and visitor accounts in Redis (docs/protocol.md 12.44;
SCALE.md "Shared state": ``thr:``, ``visitor:``).

Theory of operation:

- A hub login's ``CheckLogin`` is one question (``asks``): ``GATE`` on the attempt's three
  throttle keys and, when the switch asked for a visitor account it does not know, that
  account's hash. The answer goes back to the switch as ``LoginChecked`` (``answered``),
  without a verdict when Redis did not answer within ``cluster.answer_wait``.
  ``ForgiveLogin`` is ``FORGIVE`` in the next question's pipeline: on the same
  connection, so a login right after it finds the count taken back.
- Admin logins ask the same (``check``, ``forgive``) under a scope of their own, as they
  are counted apart on one node.
- Making a visitor account (``make_visitor``) takes a place in ``MADE``'s window of its
  tenant and address, then writes the account; a ``False`` or ``None`` answer makes
  nothing.
- ``KeepVisitor`` writes the account whole with an expiry of ``support.visitor_ttl`` plus
  ``grace`` (room for the next keep to land), through the bus's writer, which writes it
  once Redis is back if it is away; this node holds the account until
  ``VisitorReleased``, and writes what it holds again after Redis lost its data
  (``reassert``). Accounts no node holds are lost with Redis's data, and so are the
  throttle windows (SCALE.md "Failures").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from typing import Any

import orjson
from redis.exceptions import RedisError

from signaling.appwebsocket.throttle import ThrottlePolicy, Verdict
from signaling.core.actions import (
    CheckLogin,
    ForgiveLogin,
    KeepVisitor,
    LoginChecked,
    VisitorRecord,
    VisitorReleased,
)

from . import keys, login_scripts
from .asks import Asks
from .redis_book import Op

__all__ = ["ADMIN", "HUB", "SharedAction", "SharedLogins"]

log = logging.getLogger(__name__)

HUB, ADMIN = "hub", "admin"
"""The scopes of the throttles: client logins, and admin logins."""

SharedAction = CheckLogin | ForgiveLogin | KeepVisitor | VisitorReleased

ADMIN_SCOPE_ALL = ""
"""An admin token's stored scope for the server's admin: no domain is empty (the
configuration accepts ``*`` as a tenant's domain, so that could not stand for all)."""

_HOUR = 3600.0

_LIST_WAIT = 10.0
"""Seconds the admin's list of visitors may take in Redis before it is answered 503."""


class SharedLogins:
    def __init__(
        self,
        policy: ThrottlePolicy,
        *,
        visitor_ttl: float,
        visitors_per_hour: int,
        grace: float,
        answer_wait: float,
        queue_op: Callable[[Op], None],
        up: Callable[[], bool],
    ) -> None:
        """``queue_op``: a write for the writer's next pipeline; ``up``: whether the node
        may use Redis now (not fenced)."""
        self.policy = policy
        self._ttl = visitor_ttl
        self._per_hour = visitors_per_hour
        self._grace = grace
        self._queue_op = queue_op
        self.asks = Asks(answer_wait, up)
        self.answered: Callable[[LoginChecked], None] | None = None
        """Where a ``CheckLogin``'s answer goes (the switch, through the hub)."""
        self.held: dict[tuple[str, str], tuple[VisitorRecord, float]] = {}
        """The visitor accounts this node holds, with when its hold runs out (monotonic)."""

    def connect(self, redis: Any) -> None:
        """The connection the questions go on (see ``asks``)."""
        self.asks.connect(redis)

    # -- from the hub ------------------------------------------------------------------------

    def take(self, action: SharedAction) -> None:
        if type(action) is CheckLogin:
            self._check_login(action)
        elif type(action) is ForgiveLogin:
            self.forgive(HUB, action.address, action.account, action.taken)
        elif type(action) is KeepVisitor:
            record = action.record
            self.held[record.domain, record.sip] = (record, time.monotonic() + self._ttl)
            self._queue_op(_write(record, self._expiry_ms(self._ttl)))
        elif type(action) is VisitorReleased:
            self.held.pop((action.domain, action.sip), None)

    def _check_login(self, action: CheckLogin) -> None:
        charge, visitor = action.charge, action.visitor

        def fill(pipe: Any) -> None:
            self._gate(pipe, HUB, action.address, action.account, charge)
            if visitor is not None:
                pipe.hgetall(keys.visitor(*visitor))

        def answer(replies: list[Any] | None) -> None:
            assert self.answered is not None
            if replies is None:
                return self.answered(LoginChecked(action.conn, None))
            found = _record(visitor, replies[1]) if visitor is not None else None
            verdict = login_scripts.verdict(replies[0], charge)
            return self.answered(LoginChecked(action.conn, verdict, found))

        self.asks.ask(fill, answer)

    # -- for admin logins and the visitors' route ---------------------------------------------

    async def check(
        self, scope: str, address: str, account: str, *, charge: bool
    ) -> Verdict | None:
        """``GATE`` for one attempt: its verdict, or None when Redis did not answer."""
        replies = await self.asks.asked(
            lambda pipe: self._gate(pipe, scope, address, account, charge)
        )
        return login_scripts.verdict(replies[0], charge) if replies else None

    def forgive(self, scope: str, address: str, account: str, taken: tuple[str, ...]) -> None:
        """The attempt ``check`` counted had the right password (no answer awaited): the
        budgets ``taken`` get their tokens back."""
        keys_ = login_scripts.throttle_keys(scope, address, account)
        args = login_scripts.forgive_args(self.policy, taken)
        # A lost forgiveness leaves one failure counted in the budgets; the pair's next
        # right password ends its history again.
        self.asks.tell(lambda pipe: self._call(pipe, "FORGIVE", keys_, args))

    async def make_visitor(self, counted: str, record: VisitorRecord) -> bool | None:
        """Make a visitor account for ``counted`` (a tenant and an address): True once
        written, False when ``support.visitors_per_hour`` were made for it within the
        hour, None when Redis did not answer (nothing was made)."""
        window = (keys.visitors_made(counted),)
        args = (_ms(_HOUR), self._per_hour, record.sip)
        made = await self.asks.asked(lambda pipe: self._call(pipe, "MADE", window, args))
        if not made or isinstance(made[0], Exception):
            return None
        if not made[0]:
            return False
        write = _write(record, self._expiry_ms(self._ttl))
        written = await self.asks.asked(write)
        if not written or any(isinstance(reply, Exception) for reply in written):
            return None
        return True

    # -- admin tokens (docs 12.47) ------------------------------------------------------------

    async def keep_admin_token(self, key: str, domain: str | None, ttl: float) -> bool:
        """Write the token whose digest is ``key`` for ``ttl`` seconds; False when Redis
        did not take it (the token must then not be given out)."""
        value = ADMIN_SCOPE_ALL if domain is None else domain
        written = await self.asks.asked(
            lambda pipe: pipe.set(keys.admin_token(key), value, px=_ms(ttl))
        )
        return bool(written and written[0] is True)

    async def admin_token(self, key: str) -> tuple[bool, str | None] | None:
        """Whether the token whose digest is ``key`` is good (some node issued it, and it
        was neither ended nor ran out) and whose it is (None: the server's admin); None
        when Redis did not answer."""
        replies = await self.asks.asked(lambda pipe: pipe.get(keys.admin_token(key)))
        if not replies or isinstance(replies[0], Exception):
            return None
        if replies[0] is None:
            return False, None
        text = _text(replies[0])
        return True, None if text == ADMIN_SCOPE_ALL else text

    async def end_admin_token(self, key: str) -> None:
        """``POST /admin/logout``: the token stops working on every node. Unanswered
        (Redis away, the node cut off), the deletion goes with the writer's writes, which
        wait for Redis: a logout is not lost to an outage."""
        name = keys.admin_token(key)
        replies = await self.asks.asked(lambda pipe: pipe.delete(name))
        if not replies or isinstance(replies[0], Exception):
            self._queue_op(lambda pipe: pipe.delete(name))

    # -- the admin's list of visitors -----------------------------------------------------

    async def visitors(self, domains: Collection[str]) -> dict[str, list[tuple[str, str]]] | None:
        """(sip, dn) of every visitor account of each of ``domains`` in Redis, made through
        any node (``GET /admin/visitors``, docs 12.47), sorted; None when Redis did not
        answer. One ``SCAN`` of the visitors' keys (of the one tenant when one is asked
        for): for the admin's page, never on a client's path."""
        redis = self.asks.redis
        if redis is None or not self.asks.usable():
            return None
        wanted = set(domains)
        one = next(iter(wanted)) if len(wanted) == 1 else None
        pattern = keys.visitor(_glob_escaped(one) if one is not None else "*", "*")
        try:
            async with asyncio.timeout(_LIST_WAIT):
                names = [name async for name in redis.scan_iter(match=pattern, count=1000)]
                pipe = redis.pipeline(transaction=False)
                for name in names:
                    pipe.hget(name, "dn")
                names_dn = zip(names, await pipe.execute(raise_on_error=False), strict=True)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("cluster: Redis did not list the visitors (%r)", exc)
            return None
        found: dict[str, list[tuple[str, str]]] = {domain: [] for domain in wanted}
        for name, dn in names_dn:
            owner = _visitor_of(_text(name))
            if owner is None or owner[0] not in wanted:
                continue  # the pattern's * matches a colon too: another tenant's
            if isinstance(dn, bytes | str):  # else gone since the scan, or malformed
                found[owner[0]].append((owner[1], _text(dn)))
        return {domain: sorted(listed) for domain, listed in found.items()}

    def reassert(self) -> list[Op]:
        """Writes of every visitor account this node holds (Redis lost them), each with
        what is left of its hold."""
        now = time.monotonic()
        return [
            _write(record, self._expiry_ms(max(0.0, until - now)))
            for record, until in self.held.values()
        ]

    # -- the commands --------------------------------------------------------------------------

    def _gate(self, pipe: Any, scope: str, address: str, account: str, charge: bool) -> None:
        keys_ = login_scripts.throttle_keys(scope, address, account)
        self._call(pipe, "GATE", keys_, login_scripts.gate_args(self.policy, charge))

    def _call(self, pipe: Any, name: str, keys_: tuple[str, ...], args: tuple[Any, ...]) -> None:
        # EVAL with the script's text, as presence does: a pipeline that carries scripts
        # by their digest asks SCRIPT EXISTS first, a second round trip for every login,
        # and Redis finds a text it ran before in its cache.
        pipe.eval(getattr(login_scripts, name), len(keys_), *keys_, *args)

    def _expiry_ms(self, seconds: float) -> int:
        return _ms(seconds + self._grace)


def _visitor_of(key: str) -> tuple[str, str] | None:
    """(domain, sip) of a visitor account's key (``keys.visitor``), or None for another
    key: a sip has no colon, a domain may (``example.com:8080``)."""
    head = keys.visitor("", "").partition("{")[0]  # the prefix before the hash tag
    if not key.startswith(head + "{") or not key.endswith("}"):
        return None
    domain, _, sip = key[len(head) + 1 : -1].rpartition(":")
    return (domain, sip) if domain and sip and keys.visitor(domain, sip) == key else None


def _glob_escaped(text: str) -> str:
    """``text`` matched as it is by a ``SCAN`` pattern."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _write(record: VisitorRecord, expiry_ms: int) -> Op:
    key = keys.visitor(record.domain, record.sip)
    fields = {
        "dn": record.dn,
        "password": record.password,
        "context": orjson.dumps(record.context),
    }

    def write(pipe: Any) -> None:
        pipe.hset(key, mapping=fields)
        pipe.pexpire(key, expiry_ms)

    return write


def _record(user: tuple[str, str], reply: Any) -> VisitorRecord | None:
    """The visitor account in an ``HGETALL`` reply; None when there is none (or it is
    malformed: then it cannot log in, and that is logged)."""
    if not isinstance(reply, dict) or not reply:
        return None
    fields = {_text(name): value for name, value in reply.items()}
    try:
        context = orjson.loads(fields.get("context", b"null"))
        return VisitorRecord(*user, _text(fields["dn"]), _text(fields["password"]), context)
    except (KeyError, ValueError, UnicodeDecodeError) as exc:
        log.error("cluster: a malformed visitor account in Redis (%s): %r", user[1], exc)
        return None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
