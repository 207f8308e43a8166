"""Failed-login throttling that slows the guesser, never the honest user (PROTOCOL §3.6,
docs/protocol.md §12.22).

Theory of operation. Wrong passwords are remembered under three kinds of key:

- the *pair* (source address, account). Its first ``failures - 1`` wrong passwords cost
  nothing (typos); the ``failures``-th and each later one lock the pair for ``delay``,
  doubling up to ``max_delay``. While a pair is locked, every attempt of that pair, right
  or wrong, is refused ``throttled`` before the digest is looked at, and is not counted.
- the *account* and the *address*: token buckets of wrong passwords, ``account_failures``
  and ``address_failures`` at once, refilled at that many per ``window``. They are asked
  only after a digest was found wrong: when either is empty, that wrong attempt is
  answered ``throttled`` and its pair is locked for ``max_delay`` at once.

So the one thing that can refuse a correct password is its own pair's lock: a colleague
behind the same address (another account) or the owner at another address (another
pair) is never refused for someone else's guessing. Call ``locked`` before checking a
digest, then ``failed`` or ``succeeded`` (the ``Throttle`` interface).

The shared form (docs/protocol.md 12.44), for nodes that answer logins from one count:
``gate`` asks ``locked`` and, unless the pair is locked, counts the attempt as a wrong
password at once (its ``Verdict`` says whether a wrong password is then ``throttled``);
``forgive`` takes the count back once the password was right: the pair's history goes, as
a right password ends it, and each budget gets back the token the attempt took from it, if
it took one (a spent budget gave none, so a right login cannot refill it for a guesser at
the same address or on the same account). Counting before the digest
is checked is what keeps concurrent attempts from slipping past a lock on several nodes
at once; ``signaling.bus.login_scripts`` does the same in Redis, and the in-memory bus
with this class.

Memory stays bounded: each kind keeps at most ``max_keys`` entries (the oldest go first),
and an entry is dropped ``window`` after it last changed (a pair's lock never outlasts
that; a bucket is full again by then, which is the same as no entry). Entries live in
dicts ordered by their last change, so ``sweep`` only ever pops from the front.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections import Counter
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from config import LoginConfig

__all__ = ["LoginThrottle", "Throttle", "ThrottlePolicy", "Verdict", "account_key", "address_key"]


class Throttle(Protocol):
    """What ``LoginServer`` asks about one attempt: ``locked`` before the digest is checked,
    then ``failed`` or ``succeeded`` (``LoginThrottle``'s methods)."""

    def locked(self, address: str, account: str, now: float) -> float: ...

    def failed(self, address: str, account: str, now: float) -> float | None: ...

    def succeeded(self, address: str, account: str, now: float) -> None: ...


@dataclass(frozen=True, slots=True)
class Verdict:
    """The shared throttle's answer about one attempt (``LoginThrottle.gate``)."""

    wait: float = 0.0
    """Seconds the pair is still locked: the attempt is refused ``throttled``, not counted."""
    over: str | None = None
    """The budget (``account`` or ``address``) that was spent: a wrong password is
    answered ``throttled`` and its pair locked for ``max_delay``."""
    counted: bool = False
    """The attempt was counted as a wrong password: ``forgive`` it if it was right."""
    taken: tuple[str, ...] = ()
    """The budgets (``account``, ``address``) that gave the attempt a token, which
    ``forgive`` gives back; a spent one gave none."""


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """The numbers of the policy; the defaults are those of ``[login]`` in default.toml."""

    failures: int = 5
    """Wrong passwords of one pair before its back-off starts."""
    window: float = 600.0
    """How long a failure is remembered; every entry is dropped this long after it changed."""
    delay: float = 1.0
    """The first lock of a pair; each further one doubles."""
    max_delay: float = 30.0
    """The longest lock; also the lock of a wrong attempt over an account's or address's budget."""
    account_failures: int = 20
    """Wrong passwords for one account, from anywhere, at once (refilled per ``window``)."""
    address_failures: int = 100
    """Wrong passwords from one address, for any accounts, at once (refilled per ``window``)."""
    max_keys: int = 100_000
    """Entries kept of each kind (pairs, accounts, addresses)."""

    def __post_init__(self) -> None:
        # The config loader says the same with the key's name; this guards direct use.
        if not 0 < self.delay <= self.max_delay <= self.window:
            raise ValueError("expected 0 < delay <= max_delay <= window")
        if min(self.failures, self.account_failures, self.address_failures, self.max_keys) < 1:
            raise ValueError("expected budgets and max_keys of at least 1")

    @classmethod
    def from_config(cls, login: LoginConfig) -> ThrottlePolicy:
        return cls(
            failures=login.throttle_failures,
            window=login.throttle_window,
            delay=login.throttle_delay,
            max_delay=login.throttle_max_delay,
            account_failures=login.throttle_account_failures,
            address_failures=login.throttle_address_failures,
            max_keys=login.throttle_keys,
        )

    def backoff(self, locks: int) -> float:
        """The lock after ``locks`` earlier ones: delay, 2 x delay, 4 x delay… up to the cap."""
        return min(self.max_delay, self.delay * 2.0 ** min(locks, 64))


_NETWORK_64 = ((1 << 64) - 1) << 64


def address_key(address: str) -> str:
    """The key of a source address: IPv6 addresses by their /64, which is one subscriber's
    network (anyone holding one can use all of it), IPv4 (also IPv4-mapped) as it is, and
    anything else (a test client's name) verbatim."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return f"{ipaddress.IPv6Address(int(ip) & _NETWORK_64)}/64"
    return str(ip)


class _Entry:
    __slots__ = ("last",)

    def __init__(self, now: float) -> None:
        self.last = now
        """When the entry last changed; it is dropped ``window`` later."""


class _Pair(_Entry):
    __slots__ = ("failures", "locks", "until")

    def __init__(self, now: float) -> None:
        super().__init__(now)
        self.failures = 0
        self.locks = 0
        self.until = 0.0


class _Bucket(_Entry):
    __slots__ = ("tokens",)

    def __init__(self, now: float, capacity: int) -> None:
        super().__init__(now)
        self.tokens = float(capacity)

    def take(self, capacity: int, window: float, now: float) -> bool:
        """One wrong password; False when the budget was already spent."""
        tokens = min(float(capacity), self.tokens + (now - self.last) * capacity / window)
        self.last = now
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return True
        self.tokens = tokens
        return False


_K = TypeVar("_K")
_E = TypeVar("_E", bound=_Entry)


class _Recent(Generic[_K, _E]):
    """Entries in order of their last change: expired ones are at the front."""

    __slots__ = ("items", "max_keys", "window")

    def __init__(self, window: float, max_keys: int) -> None:
        self.window = window
        self.max_keys = max_keys
        self.items: dict[_K, _E] = {}

    def get(self, key: _K) -> _E | None:
        return self.items.get(key)

    def changed(self, key: _K, entry: _E, now: float) -> None:
        entry.last = now
        self.items.pop(key, None)
        self.items[key] = entry
        while len(self.items) > self.max_keys:
            del self.items[next(iter(self.items))]

    def forget(self, key: _K) -> None:
        self.items.pop(key, None)

    def sweep(self, now: float) -> None:
        items = self.items
        while items:
            key = next(iter(items))
            if items[key].last + self.window > now:
                return
            del items[key]

    def expiry(self) -> float | None:
        oldest = next(iter(self.items.values()), None)
        return None if oldest is None else oldest.last + self.window


class LoginThrottle:
    """The throttle of one login endpoint; ``failures`` and ``throttled`` feed ``/metrics``."""

    def __init__(self, policy: ThrottlePolicy | None = None) -> None:
        self.policy = policy = policy or ThrottlePolicy()
        self._pairs: _Recent[tuple[str, bytes], _Pair] = _Recent(policy.window, policy.max_keys)
        self._accounts: _Recent[bytes, _Bucket] = _Recent(policy.window, policy.max_keys)
        self._addresses: _Recent[str, _Bucket] = _Recent(policy.window, policy.max_keys)
        self.failures = 0
        """Wrong passwords (and unknown accounts) counted so far."""
        self.throttled: Counter[str] = Counter()
        """Attempts answered ``throttled``, by the budget that was spent: ``pair`` (refused
        before the digest was checked), ``account`` or ``address`` (a wrong password)."""

    def locked(self, address: str, account: str, now: float) -> float:
        """Seconds until this pair may try again; 0 when it may try now. An attempt
        refused so is counted in ``throttled``."""
        wait = self.lock_left(address, account, now)
        if wait > 0:
            self.throttled["pair"] += 1
        return wait

    def lock_left(self, address: str, account: str, now: float) -> float:
        """``locked`` without counting a refusal: a look before asking elsewhere."""
        self.sweep(now)
        pair = self._pairs.get((address_key(address), account_key(account)))
        if pair is None or pair.until <= now:
            return 0.0
        return pair.until - now

    def failed(self, address: str, account: str, now: float) -> float | None:
        """A wrong password (or an unknown account) of this pair. Returns the seconds the
        pair is now locked when the answer must be ``throttled`` (the account's or the
        address's budget is spent), None for a plain failure."""
        self.failures += 1
        over, _ = self._count(address, account, now)
        if over is None:
            return None
        self.throttled[over] += 1
        return self.policy.max_delay

    def _count(self, address: str, account: str, now: float) -> tuple[str | None, tuple[str, ...]]:
        """Count a wrong password: the budget that was already spent, if any, and the
        budgets that gave a token for it."""
        self.sweep(now)
        policy = self.policy
        where, name = address_key(address), account_key(account)
        # Both budgets are charged (no short cut): each counts every wrong password.
        account_ok = self._charge(self._accounts, name, policy.account_failures, now)
        address_ok = self._charge(self._addresses, where, policy.address_failures, now)
        over = None if account_ok and address_ok else "address" if account_ok else "account"
        key = (where, name)
        pair = self._pairs.get(key) or _Pair(now)
        pair.failures += 1
        if over is not None:
            pair.until = now + policy.max_delay
            pair.locks += 1
        elif pair.failures >= policy.failures:
            pair.until = now + policy.backoff(pair.locks)
            pair.locks += 1
        self._pairs.changed(key, pair, now)
        taken = (("account",) if account_ok else ()) + (("address",) if address_ok else ())
        return over, taken

    def succeeded(self, address: str, account: str, now: float) -> None:
        """A correct password: the pair's typos are forgiven (the account's and address's
        counts stay, they are about everyone's failures)."""
        self._pairs.forget((address_key(address), account_key(account)))
        self.sweep(now)

    def gate(self, address: str, account: str, now: float, *, charge: bool = True) -> Verdict:
        """The shared form's one question (see the module's docstring): the pair's lock, or
        else (with ``charge``) the attempt counted as a wrong password until forgiven."""
        wait = self.locked(address, account, now)
        if wait > 0 or not charge:
            return Verdict(wait)
        over, taken = self._count(address, account, now)
        return Verdict(0.0, over, counted=True, taken=taken)

    def forgive(self, address: str, account: str, now: float, taken: tuple[str, ...]) -> None:
        """The attempt ``gate`` counted had the right password: the pair's history goes
        (``succeeded``), and each budget that gave it a token (``taken``) gets it back."""
        self.succeeded(address, account, now)
        policy = self.policy
        if "account" in taken:
            _refund(self._accounts, account_key(account), policy.account_failures)
        if "address" in taken:
            _refund(self._addresses, address_key(address), policy.address_failures)

    def sweep(self, now: float) -> None:
        """Drop every entry older than ``window``."""
        self._pairs.sweep(now)
        self._accounts.sweep(now)
        self._addresses.sweep(now)

    def next_expiry(self) -> float | None:
        """When the oldest entry is due to go, for a timer that calls ``sweep``."""
        kinds = (self._pairs.expiry(), self._accounts.expiry(), self._addresses.expiry())
        times = [time for time in kinds if time is not None]
        return min(times) if times else None

    def tracked(self, now: float) -> dict[str, int]:
        """Entries kept, by kind (after dropping the expired ones)."""
        self.sweep(now)
        return {
            "pair": len(self._pairs.items),
            "account": len(self._accounts.items),
            "address": len(self._addresses.items),
        }

    def held(self) -> int:
        """Entries kept now, of every kind; only failed logins add them."""
        return len(self._pairs.items) + len(self._accounts.items) + len(self._addresses.items)

    def _charge(self, kind: _Recent[_K, _Bucket], key: _K, capacity: int, now: float) -> bool:
        """One wrong password against a budget; False when it was already spent."""
        bucket = kind.get(key) or _Bucket(now, capacity)
        within = bucket.take(capacity, self.policy.window, now)
        kind.changed(key, bucket, now)
        return within


def _refund(kind: _Recent[_K, _Bucket], key: _K, capacity: int) -> None:
    bucket = kind.get(key)
    if bucket is not None:
        bucket.tokens = min(float(capacity), bucket.tokens + 1.0)


def account_key(account: str) -> bytes:
    """The key of an account name: hashed to a fixed size, since the name comes from the
    client and could be as long as a frame."""
    return hashlib.blake2b(account.encode("utf-8", "surrogatepass"), digest_size=16).digest()
