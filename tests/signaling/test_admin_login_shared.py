"""Admin logins on a node of a cluster (docs/protocol.md 12.44): each attempt is counted by
the cluster's throttle first, a right password takes back what was counted, and a pair
this node holds locked is refused without counting anything in the cluster."""

from __future__ import annotations

import base64

from starlette.requests import Request

from config import AdminConfig
from signaling.admin_login import AdminLogins
from signaling.appwebsocket.throttle import LoginThrottle, Verdict

ADDRESS = "192.0.2.1"


class Cluster:
    """The cluster's count (``ClusterThrottle``), kept as the in-memory bus keeps it, with
    what was asked of it."""

    def __init__(self) -> None:
        self.throttle = LoginThrottle()
        self.asked: list[str] = []
        self.forgiven: list[tuple[str, ...]] = []

    async def check(
        self, scope: str, address: str, account: str, *, charge: bool
    ) -> Verdict | None:
        self.asked.append(account)
        return self.throttle.gate(address, account, 0.0, charge=charge)

    def forgive(self, scope: str, address: str, account: str, taken: tuple[str, ...]) -> None:
        self.forgiven.append(taken)
        self.throttle.forgive(address, account, 0.0, taken)


def basic(user: str, password: str) -> Request:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    headers = [(b"authorization", f"Basic {token}".encode())]
    return Request({"type": "http", "method": "GET", "headers": headers, "client": (ADDRESS, 1)})


def admin_logins(cluster: Cluster) -> AdminLogins:
    return AdminLogins(AdminConfig(password="secret"), clock=lambda: 0.0, shared=cluster)


async def test_a_right_password_takes_back_what_the_cluster_counted() -> None:
    cluster = Cluster()
    logins = admin_logins(cluster)
    assert await logins.server_admin(basic("admin", "secret")) is True
    assert cluster.asked == ["admin"] and cluster.forgiven == [("account", "address")]
    assert cluster.throttle.tracked(0.0)["pair"] == 0


async def test_a_pair_locked_here_is_refused_without_counting_it_in_the_cluster() -> None:
    cluster = Cluster()
    logins = admin_logins(cluster)
    for _ in range(5):
        assert await logins.who(basic("admin", "guess")) is None
    assert cluster.throttle.lock_left(ADDRESS, "admin", 0.0) > 0
    cluster.throttle = LoginThrottle()  # Redis lost its windows: only this node's lock
    assert await logins.who(basic("admin", "secret")) is None
    assert len(cluster.asked) == 5 and cluster.throttle.held() == 0
