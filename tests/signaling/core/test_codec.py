"""The codec's invariant: any text decodes or raises BadJson, nothing else."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signaling.core.codec import (
    _checked_im_message,
    _parse_im_message,
    decode,
    encode,
    parse_register,
    parse_signaling,
)
from signaling.core.errors import BadJson

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)

FIELDS = [
    "mt",
    "api",
    "src",
    "call",
    "sig",
    "type",
    "fty",
    "cd",
    "cau",
    "data",
    "more",
    "id",
    "typing",
    "mime",
    "flags",
    "hw",
    "sip",
    "num",
]
shaped = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.text(max_size=10)
    | st.sampled_from(["Signaling", "PbxSignal", "setup", "im_message", "facility", "Register"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(FIELDS), children, max_size=6)
    ),
    max_leaves=25,
)


@given(st.text())
def test_any_text_decodes_or_raises_bad_json(text: str) -> None:
    with contextlib.suppress(BadJson):
        decode(text)


@given(shaped)
def test_any_shape_parses_or_raises_bad_json(value: object) -> None:
    try:
        inbound = decode(json.dumps(value))
        parse_signaling(inbound)
        parse_register(inbound)
    except BadJson:
        pass


@given(json_values)
def test_encode_round_trips(value: object) -> None:
    assert json.loads(encode(value)) == value


numbers = st.one_of(
    st.integers(),
    st.integers(-(2**64), 2**65),
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**18, 10**19]),
    st.floats(allow_nan=False, allow_infinity=False),
)
numbered_values = st.recursive(
    numbers | st.text(st.sampled_from('0123456789٣a"é'), max_size=24),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children)
    ),
    max_leaves=8,
)


def _typed(value: object) -> object:
    """``value`` with every number tagged by its type: ``1 == 1.0``, but not on the wire."""
    if type(value) is dict:
        return {key: _typed(item) for key, item in value.items()}
    if type(value) is list:
        return [_typed(item) for item in value]
    return (type(value).__name__, value)


@given(numbered_values, st.sampled_from([(",", ":"), (", ", ": "), (" ,\n", " :\t")]))
def test_frames_read_as_json_reads_them(value: object, separators: tuple[str, str]) -> None:
    """orjson reads a frame only where it reads what ``json`` reads: integers beyond 64
    bits stay integers (orjson would make them floats), floats and digits in strings are
    read alike."""
    text = json.dumps({"mt": "KeepAlive", "src": value}, separators=separators)
    assert _typed(decode(text).src) == _typed(json.loads(text)["src"])


field_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1, 1),
    st.sampled_from(["", "x", "a\x00", "m" * 65, "text/plain", "https://h.test/f x"]),
    st.sampled_from(["<b>", "%zz", " u", "x" * 8193]),
)
im_items = st.dictionaries(
    st.sampled_from(
        ["data", "mime", "id", "typing", "more", "attach", "subject", "participants", "x"]
    ),
    field_values,
).map(lambda item: {"type": "im_message", **item})


def _outcome(parse: Callable[[dict[str, object]], object], item: dict[str, object]) -> object:
    try:
        return parse(item)
    except BadJson as exc:
        return f"BadJson: {exc}"


@given(im_items)
def test_a_message_item_reads_as_field_by_field(item: dict[str, object]) -> None:
    """The hot path's reading of an ``im_message`` is the field-by-field one's: the same
    message, or the same refusal naming the same field first."""
    assert _outcome(_parse_im_message, item) == _outcome(_checked_im_message, item)


def test_deeply_nested_json_is_bad_json_not_a_crash() -> None:
    with pytest.raises(BadJson):
        decode("[" * 100_000)


@pytest.mark.parametrize(
    "text",
    [
        '{"mt":"KeepAlive","src":NaN}',
        '{"mt":"KeepAlive","src":-Infinity}',
        '{"mt":"KeepAlive","src":1e400}',
        '{"mt":"KeepAlive","src":"\\ud800"}',
        '{"mt":"\\udfff"}',
        '{"mt":"AppLogin","info":' + "[" * 40 + "]" * 40 + "}",
    ],
)
def test_what_could_not_be_sent_back_is_refused(text: str) -> None:
    with pytest.raises(BadJson):
        decode(text)


def test_escaped_surrogate_pairs_are_fine() -> None:
    assert decode('{"mt":"KeepAlive","src":"\\ud83d\\ude00"}').src == "\U0001f600"


def test_echoed_values_are_bounded_in_depth() -> None:
    deep = "[" * 40 + "]" * 40
    with pytest.raises(BadJson):
        decode('{"mt":"KeepAlive","src":' + deep + "}")
    assert decode('{"mt":"KeepAlive","src":[[["ok"]]]}').src == [[["ok"]]]
    inbound = decode(
        '{"mt":"Signaling","call":1,"sig":{"type":"facility","fty":[{"type":"x","v":'
        + deep
        + "}]}}"
    )
    with pytest.raises(BadJson):
        parse_signaling(inbound)


def test_signaling_is_parsed() -> None:
    inbound = decode(
        '{"api":"PbxSignal","mt":"Signaling","call":3,"src":"x","sig":{"type":"facility",'
        '"fty":[{"type":"im_message","data":"hi","id":"m","more":true},{"type":"other","k":1}]}}'
    )
    message = parse_signaling(inbound)
    assert message.call == 3 and message.src == "x"
    (im,) = message.sig.messages
    assert (im.data, im.id, im.more, im.typing) == ("hi", "m", True, None)
    assert message.sig.fty == ({"type": "other", "k": 1},)


@pytest.mark.parametrize(
    "sig",
    [
        '{"call":0,"sig":{"type":"rel"}}',
        '{"call":true,"sig":{"type":"rel"}}',
        '{"call":1,"sig":[]}',
        '{"call":1,"sig":{"type":7}}',
        '{"call":1,"sig":{"type":"facility","fty":{}}}',
        '{"call":1,"sig":{"type":"facility","fty":[{"type":"im_message","data":5}]}}',
        '{"call":1,"sig":{"type":"facility","fty":[{"type":"im_message","id":""}]}}',
        '{"call":1,"sig":{"type":"facility","fty":[{"type":"im_message","id":"a\\u0000"}]}}',
        '{"call":1,"sig":{"type":"facility","fty":[{"type":"im_message","typing":"yes"}]}}',
        '{"call":9007199254740992,"sig":{"type":"rel"}}',
        '{"call":1,"sig":{"type":"facility","fty":[{"type":"im_message","attach":"a\\u0000"}]}}',
        '{"call":1,"sig":{"type":"facility","fty":[{"type":"im_message","attach":""}]}}',
        '{"call":1,"sig":{"type":"facility","fty":[{"type":"im_message","attach":"x\\ny"}]}}',
        '{"call":1,"sig":{"type":"facility","fty":[{"type":"im_message","attach":"<b>é"}]}}',
        '{"call":1,"sig":{"type":"facility","fty":[{"type":"im_message","attach":" u"}]}}',
    ],
)
def test_malformed_signaling_is_bad_json(sig: str) -> None:
    inbound = decode('{"api":"PbxSignal","mt":"Signaling",' + sig[1:])
    with pytest.raises(BadJson):
        parse_signaling(inbound)


def test_attach_is_blank_separated_url_encoded_urls() -> None:
    urls = "https://h.test/files/1?k=a%20b#x http://h.test/~u/(2).png"
    inbound = decode(
        '{"api":"PbxSignal","mt":"Signaling","call":1,"sig":{"type":"facility",'
        '"fty":[{"type":"im_message","attach":"' + urls + '"}]}}'
    )
    (im,) = parse_signaling(inbound).sig.messages
    assert im.attach == urls
    too_long = "u" * 8193
    inbound = decode(
        '{"api":"PbxSignal","mt":"Signaling","call":1,"sig":{"type":"facility",'
        '"fty":[{"type":"im_message","attach":"' + too_long + '"}]}}'
    )
    with pytest.raises(BadJson):
        parse_signaling(inbound)


def test_register_flags() -> None:
    register = parse_register(decode('{"mt":"Register","flags":"NO_MEDIA_CALL| OTHER"}'))
    assert register.no_media and register.flags == {"NO_MEDIA_CALL", "OTHER"}
    assert not parse_register(decode('{"mt":"Register"}')).no_media
