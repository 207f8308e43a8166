"""The login digest against the documented vectors (PROTOCOL §3.2-§3.4)."""

from __future__ import annotations

import copy
import hashlib
import json
import pickle

import pytest

from signaling.appwebsocket.digest import (
    NO_INFO,
    info_json,
    login_digest,
    new_challenge,
    session_key,
    verify_digest,
)

CHALLENGE = "0123456789abcdef"
PASSWORD = "pwd"

VECTOR_4_INFO_JSON = (
    '{"appobj":"users","apps":[{"name":"users"},{"name":"profile"}],'
    '"appurl":"https://1.2.3.4/example.com/usersapp/innovaphone-users","unlicensed":true}'
)
VECTOR_4_DIGEST = "ef1b811ffaa8f9255c39c653d8fb26b4687b2d8c4d9ac91b4821bff6bae3ff44"


def _admin_digest(info: object = NO_INFO) -> str:
    """Vectors 1-3: only ``app`` set, the other fields empty."""
    return login_digest(
        app="pbxadminapi",
        domain="",
        sip="",
        guid="",
        dn="",
        info=info,
        challenge=CHALLENGE,
        password=PASSWORD,
    )


def _users_digest(info: object) -> str:
    """Vector 4: every field set."""
    return login_digest(
        app="innovaphone-users",
        domain="example.com",
        sip="administrator",
        guid="0123456789abcdef0123456789abcdef",
        dn="Administrator User",
        info=info,
        challenge=CHALLENGE,
        password=PASSWORD,
    )


def test_vector_1_without_info() -> None:
    assert _admin_digest() == "a205299ed2ef2786c311e0be1b14db343f2cadd906a6ae7b564eee34bda5e9a1"


def test_vector_2_empty_info() -> None:
    assert _admin_digest({}) == "57b23fe824b9222a7ac879597cb509bcdc865a1bfeb057d9d12118cef0c3ba34"


def test_vector_3_info_with_cn() -> None:
    expected = "96db3c3f657230c2b68194becc6d2a77f05de9f79f01fc81e9ca0fb196b10d9d"
    assert _admin_digest({"cn": "Test User"}) == expected


def test_vector_4_all_fields() -> None:
    info = {
        "appobj": "users",
        "apps": [{"name": "users"}, {"name": "profile"}],
        "appurl": "https://1.2.3.4/example.com/usersapp/innovaphone-users",
        "unlicensed": True,
    }
    assert _users_digest(info) == VECTOR_4_DIGEST


def test_vector_4_from_raw_json() -> None:
    assert _users_digest(json.loads(VECTOR_4_INFO_JSON)) == VECTOR_4_DIGEST


def test_info_json_is_compact_ordered_and_unescaped() -> None:
    assert info_json(json.loads(VECTOR_4_INFO_JSON)) == VECTOR_4_INFO_JSON
    assert info_json({"b": 1, "a": "é/😀"}) == '{"b":1,"a":"é/😀"}'
    assert info_json(None) == "null"


def test_key_order_matters() -> None:
    assert _admin_digest({"a": 1, "b": 2}) != _admin_digest({"b": 2, "a": 1})


def test_null_info_is_present_and_differs_from_absent() -> None:
    assert _admin_digest(None) != _admin_digest(NO_INFO)
    expected = hashlib.sha256(f"pbxadminapi:::::null:{CHALLENGE}:{PASSWORD}".encode()).hexdigest()
    assert _admin_digest(None) == expected


def test_no_info_is_a_singleton() -> None:
    assert copy.deepcopy(NO_INFO) is NO_INFO
    assert pickle.loads(pickle.dumps(NO_INFO)) is NO_INFO
    assert repr(NO_INFO) == "NO_INFO"


def test_lone_surrogate_does_not_raise() -> None:
    digest = _admin_digest(json.loads('{"cn":"\\ud800"}'))
    assert len(digest) == 64


def test_session_key() -> None:
    text = "innovaphoneAppSessionKey:" + CHALLENGE + ":" + PASSWORD
    assert session_key(CHALLENGE, PASSWORD) == hashlib.sha256(text.encode()).hexdigest()


def test_verify_digest_matches() -> None:
    digest = _admin_digest()
    assert verify_digest(digest, digest)


def test_verify_digest_ignores_case() -> None:
    digest = _admin_digest()
    assert verify_digest(digest, digest.upper())
    assert verify_digest(digest.upper(), digest)


@pytest.mark.parametrize("received", ["", "0" * 64, "a205299e", "é" * 64])
def test_verify_digest_rejects_wrong(received: str) -> None:
    assert not verify_digest(_admin_digest(), received)


@pytest.mark.parametrize("received", [None, 0, b"", ["x"], {"digest": "x"}])
def test_verify_digest_rejects_non_strings(received: object) -> None:
    assert not verify_digest(_admin_digest(), received)


def test_verify_digest_rejects_the_bytes_of_a_right_digest() -> None:
    digest = _admin_digest()
    assert not verify_digest(digest, digest.encode())


def test_new_challenge_is_16_digits() -> None:
    challenge = new_challenge()
    assert len(challenge) == 16
    assert challenge.isascii() and challenge.isdigit()


def test_new_challenge_is_fresh() -> None:
    assert new_challenge() != new_challenge()
