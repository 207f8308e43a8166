"""The names of what the cluster keeps in Redis (SCALE.md "Shared state"), in one place.

A node's *name* is what the operator gave it (``server.node``); its *address* is the name
and an incarnation chosen at start, ``name.1a2b3c4d``. Everything that must not outlive
one run of a node (its inbox, its registrations, its claims) is keyed by the address, so
that frames sent to a node that died can never reach its next run, whose registrations
are numbered from 1 again. The keys of one user share a hash tag, ``{domain:sip}``.
"""

from __future__ import annotations

PREFIX = "sb:"
NODES = f"{PREFIX}nodes"
"""Hash: node name -> the address of its current run, for the survivors' checks."""


def lease(name: str) -> str:
    """String holding the address of the run that holds the name, with an expiry."""
    return f"{PREFIX}node:{name}"


def inbox(address: str) -> str:
    """Stream: the frames other nodes send to this run of a node."""
    return f"{PREFIX}inbox:{address}"


def registrations(domain: str, sip: str) -> str:
    """Hash: ``address:ref`` -> the encoded ``DeviceRecord``, every node's devices of a user."""
    return f"{PREFIX}reg:{{{domain}:{sip}}}"


def node_registrations(address: str) -> str:
    """Set: ``key|field`` of each registration a run wrote, for the janitor."""
    return f"{PREFIX}noderegs:{address}"


def token(key: str) -> str:
    """String: a registration's snapshot, under the hash of its resume token (docs 12.43)."""
    return f"{PREFIX}tok:{key}"


def node_tokens(address: str) -> str:
    """Set: the snapshot keys a run wrote, for the janitor (which lets them expire)."""
    return f"{PREFIX}nodetok:{address}"


def claim_set(key: str) -> str:
    """Set: the members of the core's shared claim ``key`` (an agent's chats, a group's home)."""
    return f"{PREFIX}claim:{key}"


def node_claims(address: str) -> str:
    """Set: the claim sets a run added a member to, for the janitor."""
    return f"{PREFIX}nodeclaims:{address}"


PRESENCE_PREFIX = f"{PREFIX}pres:"
CHANGES_PREFIX = f"{PREFIX}pc:"
PRESENCE_CHANGES = f"{CHANGES_PREFIX}*"
"""The pattern every node follows: a change of any user's presence."""


def presence(domain: str, sip: str) -> str:
    """Hash: each run's share of a user's presence (``1`` online there, ``0`` only
    registered there) and ``p``, the activity and note last published on any run."""
    return f"{PRESENCE_PREFIX}{{{domain}:{sip}}}"


def presence_changes(domain: str, sip: str) -> str:
    """Pub/sub channel: the user's presence hash changed (the message names the writer)."""
    return f"{CHANGES_PREFIX}{{{domain}:{sip}}}"


def node_presence(address: str) -> str:
    """Set: the presence hashes a run holds a share in, for the janitor."""
    return f"{PREFIX}nodepres:{address}"


def janitor(address: str) -> str:
    """String set once by the survivor that cleans up after a dead run."""
    return f"{PREFIX}janitor:{address}"


def throttle(scope: str, kind: str, name: str) -> str:
    """Hash: one entry of the login throttle of ``scope`` (``hub``, ``admin``; docs 12.44):
    a (address, account) pair's failures and lock, or an account's or an address's
    budget. The keys of one scope share a hash tag: one script reaches all three."""
    return f"{PREFIX}thr:{{{scope}}}:{kind}:{name}"


def visitors_made(counted: str) -> str:
    """Sorted set: when visitor accounts were made for ``counted`` (a tenant and a client
    address) within the last hour, for ``support.visitors_per_hour``."""
    return f"{PREFIX}thr:{{visitors}}:made:{counted}"


def visitor(domain: str, sip: str) -> str:
    """Hash: a visitor account (``dn``, ``password``, ``context``), with an expiry."""
    return f"{PREFIX}visitor:{{{domain}:{sip}}}"


def admin_token(key: str) -> str:
    """String: the scope of an admin token (docs 12.47), under the hex SHA-256 of the
    token, with the token's expiry: empty for the server's admin, else the tenant's domain."""
    return f"{PREFIX}admintok:{key}"
