"""JSON text <-> messages. The only module that parses client frames.

Invariant (kept by a Hypothesis test): any text either decodes or raises ``BadJson``;
nothing else escapes. Serialising goes through ``encode`` so the whole hub writes JSON
the same way: compact, UTF-8 friendly (``ensure_ascii=False``).
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable
from json.encoder import encode_basestring
from typing import Any

from signaling.appwebsocket.json_in import loads

from .errors import BadJson
from .messages import Cause, Endpoint, ImMessage, Inbound, JsonObject, Register, Sig, Signaling

__all__ = ["decode", "encode", "encode_string", "parse_register", "parse_signaling"]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e400: it could only be sent back as Infinity, which is not JSON
        raise ValueError(f"{text} is out of range")
    return value


_decoder = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
encode = _encoder.encode
"""Serialise one outbound message (compact, non-ASCII kept as is)."""
encode_string: Any = encode_basestring
"""One JSON string exactly as ``encode`` writes it, for frames built from pieces."""

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
"""Only frames with an escaped surrogate (\\ud800-\\udfff) pay for the full check."""

MAX_ID_LENGTH = 64
MAX_CALL_NUMBER = 2**53 - 1
MAX_SEQ = 2**53 - 1
MAX_RESUMED_CALLS = 4096
"""``seqs`` entries one ``Register`` may carry (a registration has far fewer calls)."""
MAX_ECHO_DEPTH = 32
"""Nesting allowed in values the hub sends back or passes on (``src``, unknown facility
objects): whatever JSON could decode must also encode again, with room to spare."""
MAX_ATTACH_LENGTH = 8192
_ATTACH = re.compile(
    r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+(?: +[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+)*"
)
"""``attach``: URL-encoded URLs separated by blanks (PROTOCOL §4.6, §8.3); nothing else
may travel there, since it is relayed and stored as it came."""


def decode(text: str) -> Inbound:
    """Parse one frame into its envelope (PROTOCOL §1.2, §1.4).

    orjson reads it where it reads exactly what ``json`` reads; ``json`` everything else
    (long numbers, and whatever orjson refuses: NaN, 1e400, lone surrogates, too deep),
    so that those are refused or accepted just as before (``appwebsocket.json_in``)."""
    try:
        body = loads(text, _decoder.decode)
    except (ValueError, RecursionError) as exc:
        raise BadJson("malformed JSON") from exc
    if type(body) is not dict:
        raise BadJson("a message must be a JSON object")
    if "\\u" in text and _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(body):
        # "\ud800" decodes to a string that UTF-8 cannot carry back out (§1.1)
        raise BadJson("a string holds a lone surrogate")
    mt = body.get("mt")
    if type(mt) is not str or not mt:
        raise BadJson("a message needs a string mt")
    api = body.get("api")
    if api is not None and type(api) is not str:
        raise BadJson("api must be a string")
    src = body.get("src")
    if src is not None and type(src) is not str and not _shallow(src, MAX_ECHO_DEPTH):
        raise BadJson(f"src nested deeper than {MAX_ECHO_DEPTH} levels")
    if mt == "AppLogin" and not _shallow(body.get("info"), MAX_ECHO_DEPTH):
        raise BadJson(f"info nested deeper than {MAX_ECHO_DEPTH} levels")  # it is hashed
    return Inbound(mt, api, src, body)


def parse_register(inbound: Inbound) -> Register:
    body = inbound.body
    hw = _optional_str(body, "hw")
    flags = _optional_str(body, "flags") or ""
    resume = _optional_str(body, "resume")
    raw_seqs = body.get("seqs", {})
    if raw_seqs is None:
        raw_seqs = {}
    if type(raw_seqs) is not dict or len(raw_seqs) > MAX_RESUMED_CALLS:
        raise BadJson("seqs must be an object of confId (or callId): seq")
    seqs = []
    for call_id, seq in raw_seqs.items():
        if type(seq) is not int or not 0 <= seq <= MAX_SEQ:
            raise BadJson("seqs must map each confId to a seq (an integer, 0 or more)")
        seqs.append((call_id, seq))
    src = inbound.src
    return Register(
        src=_shared(src) if type(src) is str else src,
        hw=_shared(hw) if hw is not None else None,
        flags=_flag_set(flags),
        resume=resume,
        seqs=tuple(seqs),
    )


_FLAG_SETS: dict[str, frozenset[str]] = {}
"""Flag sets parsed before, shared by every registration that sends the same ``flags``
(nearly all say ``NO_MEDIA_CALL``): a registration then holds no set of its own. Only
short strings are kept, and only the first few, so a client cannot grow it."""
_FLAG_SETS_KEPT = 32
_FLAG_STRING_KEPT = 80


_SHARED_LENGTH = 64


def _shared(text: str) -> str:
    """One copy of a short string that many registrations hold alike (the web client's
    ``src`` and ``hw`` are the same in every tab). Interned strings go when the last
    holder does, so this keeps nothing for a closed connection."""
    return sys.intern(text) if len(text) <= _SHARED_LENGTH else text


def _flag_set(flags: str) -> frozenset[str]:
    found = _FLAG_SETS.get(flags)
    if found is None:
        found = frozenset(flag.strip() for flag in flags.split("|") if flag.strip())
        if len(flags) <= _FLAG_STRING_KEPT and len(_FLAG_SETS) < _FLAG_SETS_KEPT:
            _FLAG_SETS[flags] = found
    return found


def parse_signaling(inbound: Inbound) -> Signaling:
    body = inbound.body
    call = body.get("call")
    if type(call) is not int or call == 0 or abs(call) > MAX_CALL_NUMBER:
        raise BadJson("Signaling needs a non-zero integer call")
    sig = body.get("sig")
    if type(sig) is not dict:
        raise BadJson("Signaling needs a sig object")
    return Signaling(inbound.src, call, _parse_sig(sig))


_PLAIN_SIG = frozenset({"type", "fty"})
"""The keys of a message's ``facility``: no endpoint, cause or channel to read."""


def _parse_sig(sig: JsonObject) -> Sig:
    """The parts a field absent from nearly every frame (``cd``, ``cau``, the relayed
    fields of a few types) needs are called only when it is there, and a facility of one
    ``im_message`` is read without a loop: this runs for every message a client sends."""
    get = sig.get
    kind, raw_fty = get("type"), get("fty")
    if sig.keys() <= _PLAIN_SIG:
        cd = cau = channel = None
    else:
        cd, cau, channel = get("cd"), get("cau"), get("channel")
    if type(kind) is not str:
        raise BadJson("sig needs a string type")
    if raw_fty is None:
        raw_fty = ()
    elif type(raw_fty) is not list:
        raise BadJson("fty must be a list")
    messages: tuple[ImMessage, ...]
    others: tuple[JsonObject, ...]
    if len(raw_fty) == 1 and type(item := raw_fty[0]) is dict and item.get("type") == "im_message":
        messages, others = (_parse_im_message(item),), ()
    else:
        messages, others = _fty_items(raw_fty)
    return Sig(
        kind,
        None if cd is None else _parse_endpoint(cd),
        _parse_cause(cau) if type(cau) is dict else None,
        channel if type(channel) is int else None,
        messages,
        others,
        _relayed_fields(kind, sig) if kind in RELAYED_FIELDS else None,
    )


def _fty_items(
    raw_fty: list[Any] | tuple[()],
) -> tuple[tuple[ImMessage, ...], tuple[JsonObject, ...]]:
    """The ``im_message`` items of a facility list, parsed, and the others, verbatim."""
    messages: list[ImMessage] = []
    others: list[JsonObject] = []
    for item in raw_fty:
        if type(item) is not dict or type(item_type := item.get("type")) is not str:
            raise BadJson("each fty item must be an object with a string type")
        if item_type == "im_message":
            messages.append(_parse_im_message(item))
        elif _shallow(item, MAX_ECHO_DEPTH):
            others.append(item)
        else:
            raise BadJson(f"fty item nested deeper than {MAX_ECHO_DEPTH} levels")
    return tuple(messages), tuple(others)


MAX_UUI_BYTES = 128
"""``uui``: at most 128 bytes, as Signal's page says."""
MAX_DSP_LENGTH = 128
"""``dsp``: a display text; the page sets no limit, Q.931 displays hold far less."""
MAX_HEX_ITEMS = 16
"""``pi`` and ``faststart``: lists of hex strings, this many at most."""
MAX_HEX_LENGTH = 1024
CHANNELS_CMDS = frozenset({"NONE", "SELECT", "PROPOSAL", "REQUEST", "CLOSE"})
_HEX = re.compile(r"[0-9a-fA-F]*")

RELAYED_FIELDS: dict[str, tuple[str, ...]] = {
    "info": ("complete", "dsp"),
    "progress": ("inband_info", "cau", "pi", "channels_cmd", "channels", "faststart"),
    "user_info": ("uui",),
    "channels": ("channel", "channels_cmd", "channels", "faststart"),
    "disc": ("inband_info", "cau", "pi", "uui", "dsp"),
}
"""Per Signal type the hub passes on, the fields of Signal's page that travel with it
(docs/protocol.md 12.25). ``cg``/``cd`` of ``info`` are left out on purpose: dialling is
complete at ``setup``, and identities are the hub's to state."""


def _relayed_fields(kind: str, sig: JsonObject) -> JsonObject | None:
    """The fields of ``RELAYED_FIELDS`` that ``sig`` carries, each checked; None for a
    kind that relays none (the message relay's ``facility`` stops at the first line)."""
    names = RELAYED_FIELDS.get(kind)
    if names is None:
        return None
    fields: JsonObject = {}
    for name in names:
        value = sig.get(name)
        if value is not None:
            value = _FIELD_CHECKS[name](kind, name, value)
            if value is not None:
                fields[name] = value
    return fields


def _boolean(kind: str, name: str, value: object) -> object:
    if type(value) is not bool:
        raise BadJson(f"{kind} {name} must be a boolean")
    return value


def _display(kind: str, name: str, value: object) -> object:
    if type(value) is not str or len(value) > MAX_DSP_LENGTH:
        raise BadJson(f"{kind} dsp must be a string of at most {MAX_DSP_LENGTH} characters")
    return value


def _user_info(kind: str, name: str, value: object) -> object:
    if type(value) is not str or len(value.encode("utf-8", "surrogatepass")) > MAX_UUI_BYTES:
        raise BadJson(f"{kind} uui must be a string of at most {MAX_UUI_BYTES} bytes")
    return value


def _hex_list(kind: str, name: str, value: object) -> object:
    if (
        type(value) is not list
        or len(value) > MAX_HEX_ITEMS
        or not all(
            type(item) is str and len(item) <= MAX_HEX_LENGTH and _HEX.fullmatch(item)
            for item in value
        )
    ):
        raise BadJson(f"{kind} {name} must be a list of hex strings")
    return value


def _channel(kind: str, name: str, value: object) -> object:
    if type(value) is not int or not -1 <= value <= MAX_CALL_NUMBER:
        raise BadJson(f"{kind} channel must be an integer")
    return value


def _channels_cmd(kind: str, name: str, value: object) -> object:
    if value not in CHANNELS_CMDS:
        raise BadJson(f"{kind} channels_cmd must be one of {', '.join(sorted(CHANNELS_CMDS))}")
    return value


def _channels(kind: str, name: str, value: object) -> object:
    if type(value) is not dict or not _shallow(value, MAX_ECHO_DEPTH):
        raise BadJson(f"{kind} channels must be an object nested at most {MAX_ECHO_DEPTH} deep")
    return value


def _cause_field(kind: str, name: str, value: object) -> object:
    """A cause the hub understands, as it sends causes; None (left out) otherwise."""
    cause = _parse_cause(value)
    return None if cause is None else cause.to_json()


_FIELD_CHECKS: dict[str, Callable[[str, str, object], object]] = {
    "complete": _boolean,
    "inband_info": _boolean,
    "dsp": _display,
    "uui": _user_info,
    "pi": _hex_list,
    "faststart": _hex_list,
    "channel": _channel,
    "channels_cmd": _channels_cmd,
    "channels": _channels,
    "cau": _cause_field,
}
"""How each field of ``RELAYED_FIELDS`` is checked: its value as relayed, or ``BadJson``."""


_TEXT = (str, type(None))
_FLAG = (bool, type(None))
_PLAIN_ITEM = frozenset({"type", "data", "mime", "id"})
"""The keys of nearly every ``im_message`` a client sends: no typing, fragment,
attachment, subject or participants to read."""


def _parse_im_message(item: JsonObject) -> ImMessage:
    """The fields of nearly every message read and their types checked in line (the hot
    path: every message a client sends), the others only when the item has them; a type
    that is wrong is left to ``_checked_im_message``, which finds the first one in its
    order and says which."""
    get = item.get
    data, mime, message_id = get("data"), get("mime"), get("id")
    if not (type(data) in _TEXT and type(mime) in _TEXT and type(message_id) in _TEXT):
        return _checked_im_message(item)
    if message_id is not None and (
        not 0 < len(message_id) <= MAX_ID_LENGTH or "\x00" in message_id
    ):
        # NUL: no database text column can hold it, and the id is stored with the message
        raise BadJson(f"im_message id must be 1 to {MAX_ID_LENGTH} characters, without NUL")
    if item.keys() <= _PLAIN_ITEM:
        return ImMessage(data, mime, None, False, message_id, None, None, None)
    typing, more, attach = get("typing"), get("more"), get("attach")
    subject, participants = get("subject"), get("participants")
    if not (
        type(typing) in _FLAG
        and type(more) in _FLAG
        and type(attach) in _TEXT
        and type(subject) in _TEXT
        and type(participants) in _TEXT
    ):
        return _checked_im_message(item)
    if attach is not None:
        _check_attach(attach)
    return ImMessage(data, mime, typing, more is True, message_id, attach, subject, participants)


def _checked_im_message(item: JsonObject) -> ImMessage:
    """``_parse_im_message`` field by field, each refusal naming its field."""
    message_id = _optional_str(item, "id")
    if message_id is not None and (
        not 0 < len(message_id) <= MAX_ID_LENGTH or "\x00" in message_id
    ):
        raise BadJson(f"im_message id must be 1 to {MAX_ID_LENGTH} characters, without NUL")
    typing = item.get("typing")
    if typing is not None and type(typing) is not bool:
        raise BadJson("im_message typing must be a boolean")
    more = item.get("more", False)
    if more is None:
        more = False
    if type(more) is not bool:
        raise BadJson("im_message more must be a boolean")
    return ImMessage(
        data=_optional_str(item, "data"),
        typing=typing,
        more=more,
        id=message_id,
        attach=_parse_attach(item),
        subject=_optional_str(item, "subject"),
        participants=_optional_str(item, "participants"),
        mime=_optional_str(item, "mime"),
    )


def _parse_attach(item: JsonObject) -> str | None:
    attach = _optional_str(item, "attach")
    if attach is not None:
        _check_attach(attach)
    return attach


def _check_attach(attach: str) -> None:
    if len(attach) > MAX_ATTACH_LENGTH or _ATTACH.fullmatch(attach) is None:
        raise BadJson(
            f"im_message attach must be blank-separated URL-encoded URLs,"
            f" at most {MAX_ATTACH_LENGTH} characters"
        )


def _parse_endpoint(value: Any) -> Endpoint | None:
    if value is None:
        return None
    if type(value) is not dict:
        raise BadJson("an endpoint must be an object")
    return Endpoint(sip=_optional_str(value, "sip"), num=_optional_str(value, "num"))


def _parse_cause(value: Any) -> Cause | None:
    if type(value) is not dict:
        return None
    num, loc = value.get("num"), value.get("loc", 0)
    if type(num) is not int or not 0 <= num <= 127:
        return None
    return Cause(loc=loc if type(loc) is int and 0 <= loc <= 15 else 0, num=num)


def _has_lone_surrogate(body: JsonObject) -> bool:
    try:
        encode(body).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _shallow(value: Any, depth: int) -> bool:
    """True when ``value`` nests lists/objects at most ``depth`` levels deep."""
    if type(value) is dict:
        value = value.values()
    elif type(value) is not list:
        return True
    if depth == 0:
        return False
    return all(_shallow(item, depth - 1) for item in value)


def _optional_str(obj: JsonObject, key: str) -> str | None:
    value = obj.get(key)
    if value is None or type(value) is str:
        return value
    raise BadJson(f"{key} must be a string")
