"""The hub's copy of the groups the messages service keeps (PROTOCOL §7.6, §12.10).

The service owns groups; the hub needs them on the hot side of a ``setup`` (is this sip
a group, is the caller a member) and cannot wait for a round trip there. So the service
sends ``GroupInd`` for every group when the hub's link comes up (``SyncGroups``) and again
after every change, and the hub answers setups from this copy. The change's ``GroupInd``
comes before the result that tells the client, and is taken at once, so a setup made on
that result finds it here (docs/protocol.md 12.23).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from config import UserConfig

__all__ = ["Group", "GroupBook"]


@dataclass(frozen=True, slots=True)
class Group:
    domain: str
    id: int
    sip: str
    dn: str
    members: frozenset[str]

    def as_user(self) -> UserConfig:
        """The group as a call's far end (``cd``, display name)."""
        return UserConfig(sip=self.sip, dn=self.dn, num="", password="")


class GroupBook:
    def __init__(self) -> None:
        self._groups: dict[tuple[str, str], Group] = {}

    def get(self, domain: str, sip: str) -> Group | None:
        return self._groups.get((domain, sip))

    def update(self, message: dict[str, Any]) -> Group | None:
        """Take one ``GroupInd``; returns the group, or None when it is malformed."""
        domain, sip, dn, members = (
            message.get("domain"),
            message.get("sip"),
            message.get("dn"),
            message.get("members"),
        )
        group_id = message.get("id")
        if not (
            isinstance(domain, str)
            and isinstance(sip, str)
            and isinstance(dn, str)
            and type(group_id) is int
            and isinstance(members, list)
        ):
            return None
        sips = frozenset(
            member["sip"]
            for member in members
            if isinstance(member, dict) and isinstance(member.get("sip"), str)
        )
        group = Group(domain, group_id, sip, dn, sips)
        self._groups[domain, sip] = group
        return group

    def __len__(self) -> int:
        return len(self._groups)
