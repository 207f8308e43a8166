"""Logins and visitor accounts of switches in a cluster, on the in-memory bus
(docs/protocol.md 12.44): one count of failed logins for every switch, visitor accounts
any switch can log in, and what a switch does when the cluster does not answer."""

from __future__ import annotations

from dataclasses import replace

from config import UserConfig
from signaling.core.actions import CheckLogin, LoginChecked, VisitorRecord
from tests.signaling.core.cluster_harness import Client, Cluster
from tests.signaling.core.harness import login_message
from tests.support import PASSWORDS, make_config

DOMAIN = "example.com"


def attempt(cluster: Cluster, node: str, sip: str, password: str, address: str) -> Client:
    """A connection from ``address`` that sends ``AppLogin`` (the bus not run yet)."""
    conn, _ = cluster.switch(node).open(address)
    client = (node, conn)
    cluster.send(client, {"mt": "AppChallenge"})
    cluster.take(client)
    cluster.send(client, login_message(sip, password), settle=False)
    return client


def answer(cluster: Cluster, client: Client) -> dict[str, object]:
    """The login's answer, once the cluster's throttle answered."""
    cluster.bus.answer_logins()
    result = cluster.take(client)[-1]
    assert result["mt"] == "AppLoginResult", result
    return result


def login(cluster: Cluster, node: str, sip: str, password: str, address: str) -> dict[str, object]:
    return answer(cluster, attempt(cluster, node, sip, password, address))


def visitor(cluster: Cluster, node: str, context: object = None) -> VisitorRecord:
    """A visitor account made on ``node``, as the visitors' route makes it."""
    record = VisitorRecord(DOMAIN, "visitor-0123456789abcdef", "Ann Buyer", "ann-pw", context)
    switch = cluster.switch(node)
    tenant = switch.directory.tenant(DOMAIN)
    assert tenant is not None
    tenant.put(UserConfig(sip=record.sip, dn=record.dn, num="", password=record.password))
    cluster.feed(node, switch.visitor_made(DOMAIN, record.sip, context), settle=True)
    return record


def done(cluster: Cluster) -> None:
    """Once failures are forgotten and unused visitor accounts ended, nothing is kept."""
    for node, switch in list(cluster.bus.switches.items()):
        for conn in list(switch.connections):
            cluster.close((node, conn))
    cluster.advance(cluster.config.support.visitor_ttl)
    assert cluster.bus.book.visitors == {}
    cluster.finish()


def test_failures_on_two_switches_are_counted_once_for_all() -> None:
    cluster = Cluster()
    for node in "ababa":  # five wrong passwords of one pair, over both switches
        assert login(cluster, node, "alice", "wrong", "192.0.2.1")["error"] == 1
    locked = login(cluster, "b", "alice", PASSWORDS["alice"], "192.0.2.1")
    assert locked["error"] == 2 and locked["retry_after_ms"] == 1000
    # neighbours are not held: another account at that address, the account elsewhere
    assert login(cluster, "a", "bob", PASSWORDS["bob"], "192.0.2.1")["ok"] is True
    assert login(cluster, "b", "alice", PASSWORDS["alice"], "192.0.2.2")["ok"] is True
    cluster.advance(1.0)
    assert login(cluster, "a", "alice", PASSWORDS["alice"], "192.0.2.1")["ok"] is True
    done(cluster)


def test_a_login_waits_for_the_answer_and_says_so_to_anything_else() -> None:
    cluster = Cluster()
    client = attempt(cluster, "a", "alice", PASSWORDS["alice"], "192.0.2.1")
    assert cluster.take(client) == []
    cluster.send(client, {"mt": "AppChallenge", "src": "again"}, settle=False)
    (error,) = cluster.take(client)
    assert (error["mt"], error["code"], error["src"]) == ("Error", "bad_state", "again")
    cluster.send(client, {"mt": "KeepAlive"}, settle=False)
    assert cluster.take(client) == [{"mt": "KeepAlive"}]  # answered as always
    assert cluster.switch("a").held()["login_checks"] == 1
    assert answer(cluster, client)["ok"] is True
    assert cluster.switch("a").held()["login_checks"] == 0
    cluster.finish()


def test_a_visitor_made_on_one_switch_logs_in_on_another() -> None:
    cluster = Cluster()
    record = visitor(cluster, "a", {"product": "Boots", "url": "https://shop.example/cart"})
    assert cluster.bus.book.visitors[DOMAIN, record.sip] == record
    result = login(cluster, "b", record.sip, record.password, "192.0.2.1")
    assert result["ok"] is True and result["dn"] == "Ann Buyer"
    b = cluster.switch("b")
    assert b.directory.user(DOMAIN, record.sip) is not None  # held there from now on
    alice = cluster.phone("a", "alice")  # an agent of the queue, on the other switch
    ann = cluster.phone("b", record.sip, password=record.password)
    cluster.setup(ann, 1, "support")
    offer = [m for m in cluster.take(alice) if m.get("sig", {}).get("type") == "setup"]
    context = {"type": "context", "product": "Boots", "url": "https://shop.example/cart"}
    assert context in offer[0]["sig"]["fty"]  # the context its page gave, on switch a
    done(cluster)


def test_a_wrong_password_of_a_visitor_known_elsewhere_is_a_failure() -> None:
    cluster = Cluster()
    record = visitor(cluster, "a")
    assert login(cluster, "b", record.sip, "not-it", "192.0.2.1")["error"] == 1
    assert login(cluster, "b", "visitor-ffffffffffffffff", "x", "192.0.2.1")["error"] == 1
    # not learnt by switch b, so not kept alive in the cluster by anyone who knows its name
    assert cluster.switch("b").directory.user(DOMAIN, record.sip) is None
    assert cluster.bus.book.keepers[DOMAIN, record.sip] == {"a"}
    assert cluster.switch("b").throttle.failures == 2  # counted as unknown accounts
    done(cluster)


def unanswered(cluster: Cluster, client: Client) -> dict[str, object]:
    """The bus gave up on the client's ``CheckLogin`` (Redis did not answer)."""
    (check,) = [d.question for d in cluster.bus.pending if isinstance(d.question, CheckLogin)]
    cluster.bus.pending.clear()
    node, conn = client
    cluster.feed(node, cluster.switch(node).login_checked(LoginChecked(conn, None)), True)
    result = cluster.take(client)[-1]
    assert check.conn == conn and result["mt"] == "AppLoginResult", result
    return result


def test_without_an_answer_a_switch_counts_alone_and_an_unknown_visitor_is_unavailable() -> None:
    cluster = Cluster()
    record = visitor(cluster, "a")
    for _ in range(5):
        client = attempt(cluster, "b", "alice", "wrong", "192.0.2.1")
        assert unanswered(cluster, client)["error"] == 1
    client = attempt(cluster, "b", "alice", PASSWORDS["alice"], "192.0.2.1")
    assert cluster.take(client)[-1]["error"] == 2  # this switch's own count holds
    client = attempt(cluster, "b", "bob", PASSWORDS["bob"], "192.0.2.1")
    assert unanswered(cluster, client)["ok"] is True
    client = attempt(cluster, "b", record.sip, record.password, "192.0.2.1")
    result = unanswered(cluster, client)
    assert (result["error"], result["errorText"]) == (4, "unavailable")
    assert cluster.switch("b").throttle.failures == 5  # not counted: nothing was checked
    client = attempt(cluster, "a", record.sip, record.password, "192.0.2.1")
    assert unanswered(cluster, client)["ok"] is True  # known where it was made
    done(cluster)


def test_a_pair_this_switch_holds_locked_is_refused_without_asking_the_cluster() -> None:
    """Redis lost its throttle windows, or the switch's lock outlasts the cluster's: the
    refused attempt is not counted anywhere (12.22), right password or wrong."""
    cluster = Cluster()
    for _ in range(5):
        client = attempt(cluster, "b", "alice", "wrong", "192.0.2.1")
        assert unanswered(cluster, client)["error"] == 1
    for password in (PASSWORDS["alice"], "wrong"):
        client = attempt(cluster, "b", "alice", password, "192.0.2.1")
        assert cluster.take(client)[-1]["error"] == 2
    assert not any(isinstance(d.question, CheckLogin) for d in cluster.bus.pending)
    assert cluster.bus.book.throttle.held() == 0
    assert cluster.switch("b").throttle.throttled == {"pair": 2}
    cluster.advance(1.0)
    assert login(cluster, "a", "alice", PASSWORDS["alice"], "192.0.2.1")["ok"] is True
    done(cluster)


def counted_late(cluster: Cluster, client: Client) -> dict[str, object]:
    """The client's ``CheckLogin`` reached Redis and was counted, but its answer came
    after ``cluster.answer_wait``: the switch decided without a verdict."""
    (delivery,) = [d for d in cluster.bus.pending if isinstance(d.question, CheckLogin)]
    cluster.bus.pending.remove(delivery)
    check = delivery.question
    assert isinstance(check, CheckLogin)
    cluster.bus.book.throttle.gate(check.address, check.account, cluster.clock.monotonic())
    node, conn = client
    cluster.feed(node, cluster.switch(node).login_checked(LoginChecked(conn, None)), True)
    result = cluster.take(client)[-1]
    assert result["mt"] == "AppLoginResult", result
    return result


def test_a_right_password_counted_too_late_still_ends_its_pair_s_history() -> None:
    """Four typos, then the right password whose count came back too late: had it stayed
    counted, the pair would be locked for its owner's next login on every switch."""
    cluster = Cluster()
    for node in "abab":
        assert login(cluster, node, "alice", "wrong", "192.0.2.1")["error"] == 1
    client = attempt(cluster, "a", "alice", PASSWORDS["alice"], "192.0.2.1")
    assert counted_late(cluster, client)["ok"] is True
    assert login(cluster, "b", "alice", PASSWORDS["alice"], "192.0.2.1")["ok"] is True
    for node in "abab":  # and the four typos are free again
        assert login(cluster, node, "alice", "wrong", "192.0.2.1")["error"] == 1
    done(cluster)


def test_a_visitor_is_kept_in_the_cluster_while_used_and_released_when_not() -> None:
    config = make_config()
    config = replace(config, support=replace(config.support, visitor_ttl=100.0))
    cluster = Cluster(config=config)
    record = visitor(cluster, "a", {"product": "Boots", "shop": {"not": "a string"}})
    user = (DOMAIN, record.sip)
    assert cluster.bus.book.keepers[user] == {"a"}
    assert cluster.bus.book.visitors[user].context == {"product": "Boots"}  # as chats carry it
    phone = cluster.phone("b", record.sip, password=record.password)
    assert cluster.bus.book.keepers[user] == {"a", "b"}
    cluster.advance(100.0)  # a period: unused on a (let go), registered on b (kept)
    assert cluster.bus.book.keepers[user] == {"b"}
    assert cluster.switch("a").directory.user(DOMAIN, record.sip) is None
    assert cluster.switch("b").directory.user(DOMAIN, record.sip) is not None
    cluster.close(phone)
    cluster.advance(100.0)
    assert user not in cluster.bus.book.visitors
    assert cluster.switch("b").directory.user(DOMAIN, record.sip) is None
    cluster.finish()
