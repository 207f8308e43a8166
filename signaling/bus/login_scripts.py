"""The login throttle and the visitor-account limit as Redis keeps them for every node
(docs/protocol.md 12.44): the scripts, and the commands that call them.

``GATE`` is ``LoginThrottle.gate`` in one atomic step: the pair's lock, or else the
attempt counted as a wrong password (both budgets charged, the pair's failures counted
and its lock set by the same rules), until ``FORGIVE`` takes it back. Times are Redis's
own (``TIME``, in milliseconds), so no two nodes' clocks are ever compared; every entry
expires ``throttle_window`` after it last changed, as it is dropped from memory. A pair is
a hash ``{f: failures, l: locks, u: locked until}``, a budget ``{t: tokens, s: when
they were counted}``.

``MADE`` is ``SlidingWindow`` for ``support.visitors_per_hour``: the times a tenant's
visitors were made from one address within the window, one member each.
"""

from __future__ import annotations

import math
from typing import Any

from signaling.appwebsocket.throttle import ThrottlePolicy, Verdict, account_key, address_key

from . import keys

__all__ = ["FORGIVE", "GATE", "MADE", "forgive_args", "gate_args", "throttle_keys", "verdict"]

GATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lock = tonumber(redis.call('HGET', KEYS[1], 'u') or 0)
if lock > now then return {lock - now, 0, 0} end
if ARGV[1] ~= '1' then return {0, 0, 0} end
local window = tonumber(ARGV[3])
local function take(key, cap)
  local b = redis.call('HMGET', key, 't', 's')
  local tokens = cap
  if b[1] then tokens = math.min(cap, tonumber(b[1]) + (now - tonumber(b[2])) * cap / window) end
  local ok = tokens >= 1
  if ok then tokens = tokens - 1 end
  redis.call('HSET', key, 't', string.format('%.17g', tokens), 's', string.format('%d', now))
  redis.call('PEXPIRE', key, window)
  return ok
end
local account_ok = take(KEYS[2], tonumber(ARGV[6]))
local address_ok = take(KEYS[3], tonumber(ARGV[7]))
local over = 0
if not account_ok then over = 1 elseif not address_ok then over = 2 end
local taken = 0
if account_ok then taken = taken + 1 end
if address_ok then taken = taken + 2 end
local failures = redis.call('HINCRBY', KEYS[1], 'f', 1)
local locks = tonumber(redis.call('HGET', KEYS[1], 'l') or 0)
local wait = -1
if over > 0 then
  wait = tonumber(ARGV[5])
elseif failures >= tonumber(ARGV[2]) then
  wait = math.min(tonumber(ARGV[5]), tonumber(ARGV[4]) * 2 ^ math.min(locks, 64))
end
if wait >= 0 then
  redis.call('HSET', KEYS[1], 'u', string.format('%d', now + wait), 'l', locks + 1)
end
redis.call('PEXPIRE', KEYS[1], window)
return {0, over, taken}
"""
"""KEYS: pair, account, address. ARGV: charge (1 or 0), failures, window, delay,
max_delay (milliseconds), account_failures, address_failures. Returns {ms the pair is
still locked, the budget spent: 0 none, 1 the account's, 2 the address's, the budgets
that gave a token: 1 the account's plus 2 the address's}."""

FORGIVE = """
redis.call('DEL', KEYS[1])
for i = 2, 3 do
  local tokens = redis.call('HGET', KEYS[i], 't')
  if tokens and ARGV[2 * i - 2] == '1' then
    local kept = math.min(tonumber(ARGV[2 * i - 3]), tonumber(tokens) + 1)
    redis.call('HSET', KEYS[i], 't', string.format('%.17g', kept))
  end
end
return 1
"""
"""KEYS: pair, account, address. ARGV: account_failures, whether the account's budget
gave a token (1 or 0), address_failures, whether the address's did. The pair goes; a
budget gets a token back only if it gave one (``GATE``'s ``taken``). An entry written
keeps the expiry ``GATE`` set: ``HSET`` on a hash does not clear it."""

MADE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""
"""KEYS: the address's set. ARGV: window (ms), limit, a member of its own (the new
account's sip). Returns 1 and counts the account if the window has room, else 0."""

_OVER = {0: None, 1: "account", 2: "address"}


def throttle_keys(scope: str, address: str, account: str) -> tuple[str, str, str]:
    """The pair's, the account's and the address's keys of one attempt."""
    where, name = address_key(address), account_key(account).hex()
    return (
        keys.throttle(scope, "pair", f"{where} {name}"),
        keys.throttle(scope, "account", name),
        keys.throttle(scope, "address", where),
    )


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


def gate_args(policy: ThrottlePolicy, charge: bool) -> tuple[int, ...]:
    return (
        int(charge),
        policy.failures,
        _ms(policy.window),
        _ms(policy.delay),
        _ms(policy.max_delay),
        policy.account_failures,
        policy.address_failures,
    )


def forgive_args(policy: ThrottlePolicy, taken: tuple[str, ...]) -> tuple[int, ...]:
    return (
        policy.account_failures,
        int("account" in taken),
        policy.address_failures,
        int("address" in taken),
    )


def verdict(reply: Any, charge: bool) -> Verdict | None:
    """``GATE``'s reply as a ``Verdict``; None for anything else (an error)."""
    try:
        wait_ms, over, taken = (int(part) for part in reply)
    except (TypeError, ValueError):
        return None
    if wait_ms > 0:
        return Verdict(wait_ms / 1000)
    gave = tuple(name for bit, name in ((1, "account"), (2, "address")) if taken & bit)
    return Verdict(0.0, _OVER.get(over), counted=charge, taken=gave)
