"""The text of a `next` message whose result many subscribers share, encoded once.

fast_execution.py executes a subscription event once per (document, variables, role) and
hands every such subscriber the same result; `share` marks that result's data. Strawberry
then builds each subscriber's `next` message around that very object, and the view's
encode_json asks `next_frame` for its text: the payload's JSON is made once and only the
subscription id differs per frame. A message of any other shape is encoded as usual.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

# id(data) -> (data, its payload's JSON once made). The data is kept so its id stays unique.
_PAYLOADS: OrderedDict[int, tuple[object, str | None]] = OrderedDict()
_LIMIT = 256


def share(data: object) -> None:
    """Mark an event result's data as shared by subscribers, so its JSON is made once."""
    _PAYLOADS[id(data)] = (data, None)
    if len(_PAYLOADS) > _LIMIT:
        _PAYLOADS.popitem(last=False)


def next_frame(message: object, encode: Callable[[object], str]) -> str | None:
    """The JSON text of `message` if it is a `next` message carrying shared data, else None."""
    if type(message) is not dict or len(message) != 3 or message.get("type") != "next":
        return None
    payload, op_id = message.get("payload"), message.get("id")
    if type(payload) is not dict or len(payload) != 1 or type(op_id) is not str:
        return None  # errors or extensions beside the data: not the shared part alone
    data = payload.get("data")
    entry = _PAYLOADS.get(id(data))
    if entry is None or entry[0] is not data:
        return None
    text = entry[1]
    if text is None:
        text = encode({"data": data})
        _PAYLOADS[id(data)] = (data, text)
    return '{"id":' + encode(op_id) + ',"type":"next","payload":' + text + "}"
