"""How the Redis backend writes envelopes, receipts and numbers as Redis strings.

An envelope is one compact JSON array `[topic, data, trace_id, id, group, priority,
created_at]`: decoding it is one `json.loads`, which matters at thousands of messages per
second. A receipt is `<ref>/<attempt>`: the message's place in its queue and the delivery's
attempt number, which the scripts compare with the stored one, so an ack from a delivery
whose lease was lost (the message was handed out again, with a higher attempt) is a no-op.
"""

from __future__ import annotations

import json
import json.scanner
from typing import Any

from .._envelope import JSON, DeadLetter, Envelope, expired_error
from .._errors import BackendError

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=True).encode
_dumps_ascii = json.JSONEncoder(separators=(",", ":"), allow_nan=True).encode


def _refuse(value: object) -> None:
    """What JSON cannot hold: refused with JSONEncoder.default's own words."""
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# `_dumps` builds json's C encoder anew on every call, through two Python frames (a tenth of
# a sequential emit's Python): this one, made once, writes the same text. Its `markers` (the
# containers being encoded, which is how it finds a value that contains itself) are empty
# after every encode that returned; one that raised may leave some behind, so they are
# cleared then. Encodes run on the trio thread only (the backend's methods), one at a time.
_markers: dict[int, Any] = {}
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_encode: Any = (
    None
    if _c_make_encoder is None
    else _c_make_encoder(
        _markers, _refuse, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )
)
_loads = json.loads
# (text, index) -> (value, end); StopIteration when no value starts there
_scan: Any = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def encode_json(value: JSON, *, where: str) -> str:
    """JSON text of a value, refusing what JSON cannot hold (as the memory backend does).

    The text always has a UTF-8 form, which is what Redis gets. A str with a lone surrogate
    (`"\\ud800"` is valid JSON, and `json.loads` gives such a str) has none: that value is
    written with `\\u` escapes instead, so it is stored losslessly, as the SQLite backend
    stores every value. Checked per value, before the value joins anyone else's batch."""
    try:
        text: str = _dumps(value) if _encode is None else "".join(_encode(value, 0))
    except BaseException as exc:
        _markers.clear()
        if not isinstance(exc, TypeError | ValueError):
            raise
        raise BackendError(
            f"{where} is not JSON: expected dict (with str keys), list, str, int, float, bool "
            f"or None, got {exc}"
        ) from None
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            text = _dumps_ascii(value)
    return text


def to_bytes(text: str, what: str) -> bytes:
    """UTF-8 of a name Redis stores as a raw string (a topic, a message group): one that has
    no UTF-8 form (a lone surrogate) is refused here, at its own caller."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        raise BackendError(
            f"{what} {text!r} is not valid Unicode (it holds a lone surrogate) and cannot be "
            "stored in Redis; use a name made of characters"
        ) from None


def check_keys(value: Any, *, where: str, path: str = "$") -> None:
    """Refuse dicts with non-string keys, which `json.dumps` would silently turn into strings."""
    if type(value) is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise BackendError(
                    f"{where} is not JSON at {path}: expected dict (with str keys), list, str, "
                    f"int, float, bool or None, got key {key!r} ({type(key).__name__})"
                )
            if type(item) is dict or type(item) is list or type(item) is tuple:
                check_keys(item, where=where, path=f"{path}.{key}")
    elif type(value) is list or type(value) is tuple:
        for i, item in enumerate(value):
            if type(item) is dict or type(item) is list or type(item) is tuple:
                check_keys(item, where=where, path=f"{path}[{i}]")


def decode_json(text: str) -> JSON:
    return _loads(text)


def encode_envelope(envelope: Envelope) -> str:
    try:
        return _encode_envelope(envelope, "")
    except BackendError:
        # Again, to say which message it is: the name is made only when it is needed
        # (making it for every message cost a tenth of a publish's Python).
        return _encode_envelope(envelope, f"message {envelope.id} on topic {envelope.topic!r}")


def _encode_envelope(envelope: Envelope, where: str) -> str:
    check_keys(envelope.data, where=where)
    fields = [
        envelope.topic,
        envelope.data,
        envelope.trace_id,
        envelope.id,
        envelope.group,
        envelope.priority,
        envelope.created_at,
    ]
    if envelope.not_before is not None or envelope.expires_at is not None or envelope.key:
        # [..., not_before, expires_at, key] only when set: a plain message keeps 7 fields
        # (and the scripts read not_before as the 8th when a subscription has a ttl).
        fields += [envelope.not_before, envelope.expires_at, envelope.key]
    return encode_json(fields, where=where)


def decode_envelope(text: str) -> Envelope:
    """The envelope `encode_envelope` wrote: its array's fields are Envelope's, in order.
    Parsed by json's C scanner itself (json.loads adds three Python calls around it, a
    third of the cost of a small message); text that is not such an array raises
    ValueError."""
    try:
        fields, end = _scan(text, 0)
    except (StopIteration, ValueError):  # no JSON value at all / a broken one
        fields, end = None, -1
    if type(fields) is not list or len(fields) not in (7, 10) or end != len(text):
        raise ValueError(f"not an envelope stored by the Redis backend: {text[:200]!r}")
    return Envelope(*fields)


def publish_args(envelope: Envelope) -> list[str]:
    """(topic, envelope, group, priority) as the scripts take them; '' means none."""
    return [
        envelope.topic,
        encode_envelope(envelope),
        "" if envelope.group is None else envelope.group,
        str(envelope.priority) if envelope.priority else "",
    ]


def publish_bytes(envelope: Envelope) -> list[bytes]:
    """`publish_args` as the bytes Redis gets, made for one caller before its message joins
    a group commit: whatever of it cannot be sent fails that caller, not the batch."""
    body = encode_envelope(envelope)
    group, priority = envelope.group, envelope.priority
    try:
        # `publish_args`'s fields, made here without its list (and no encode of an empty
        # string): a sequential producer makes one per emit.
        return [
            envelope.topic.encode(),
            body.encode(),
            b"" if group is None else group.encode(),
            str(priority).encode() if priority else b"",
        ]
    except UnicodeEncodeError:  # (encode_json made the body encodable)
        topic, text, group_text, rank = publish_args(envelope)
        where = f"message {envelope.id} on topic {envelope.topic!r}:"
        return [
            to_bytes(topic, f"{where} the topic"),
            text.encode(),
            to_bytes(group_text, f"{where} the message group"),
            rank.encode(),
        ]


def receipt(ref: str, attempt: int | str) -> str:
    return f"{ref}/{attempt}"


def receipt_groups(by_sub: dict[str, list[str]]) -> list[str]:
    """(sub, n, ref, attempt, ...) groups, as the ACK, EXTEND and FINISH scripts read them,
    from each subscription's (ref, attempt, ...) pairs."""
    items: list[str] = []
    for sub, pairs in by_sub.items():
        items += (sub, str(len(pairs) // 2), *pairs)
    return items


def parse_receipt(text: str) -> tuple[str, str]:
    """(ref, attempt) of a receipt this backend issued; raises BackendError otherwise."""
    ref, sep, attempt = text.rpartition("/")
    if not sep or not ref or not attempt.isdigit():
        raise BackendError(
            f"receipt {text!r} was not issued by the Redis backend: expected '<ref>/<attempt>'"
        )
    return ref, attempt


def epoch(value: float) -> str:
    """A float as Redis reads a score: repr keeps every bit, so equal times compare equal."""
    return repr(float(value))


def millis(value: float) -> str:
    """Epoch seconds as whole milliseconds, the score of leases and retry times. Integer
    scores matter: Redis keeps small sorted sets as listpacks and re-parses a float score
    text on every comparison there, which made a 100-lease ZADD cost milliseconds."""
    return str(round(value * 1000))


def decode_dead_letter(subscription: str, fields: dict[str, str]) -> DeadLetter:
    error = fields["err"]
    if "xd" in fields:  # expired: the script stores the deadline, the words are made here
        error = expired_error(int(fields["xd"]) / 1000)
    return DeadLetter(
        id=fields["id"],
        subscription=subscription,
        envelope=decode_envelope(fields["e"]),
        error=error,
        attempts=int(fields["att"]),
        failed_at=float(fields["at"]),
        traceback=fields.get("tb"),
    )


def later_args(envelope: Envelope) -> list[bytes]:
    """What PUBLISH_LATER takes per message after `publish_bytes`: due ms, key, id and
    expiry ms ('' = none)."""
    where = f"message {envelope.id} on topic {envelope.topic!r}:"
    nb, exp = envelope.not_before, envelope.expires_at
    return [
        b"" if nb is None else millis(nb).encode(),
        b"" if envelope.key is None else to_bytes(envelope.key, f"{where} the key"),
        envelope.id.encode(),
        b"" if exp is None else millis(exp).encode(),
    ]
