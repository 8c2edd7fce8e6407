"""A shared event's `next` frame: encoded once, and exactly what encoding the message gives."""

from __future__ import annotations

import json

import orjson

from server.api.fast_path import shared_frames
from server.app import BackupsGraphQL


class CountingEncoder:
    def __init__(self) -> None:
        self.encoded: list[object] = []

    def __call__(self, value: object) -> str:
        self.encoded.append(value)
        return orjson.dumps(value).decode()


def next_message(op_id: str, data: object, **extra: object) -> dict[str, object]:
    return {"id": op_id, "type": "next", "payload": {"data": data, **extra}}


def test_shared_data_is_encoded_once_and_each_frame_keeps_its_own_id() -> None:
    data = {"operationLog": {"sequence": 3, "message": 'says "hi"\n'}}
    shared_frames.share(data)
    encode = CountingEncoder()
    frames = [shared_frames.next_frame(next_message(op_id, data), encode) for op_id in ("1", 'odd "id"', "1")]
    assert all(frame is not None for frame in frames)
    assert [json.loads(frame) for frame in frames if frame] == [
        next_message("1", data),
        next_message('odd "id"', data),
        next_message("1", data),
    ]
    assert encode.encoded.count({"data": data}) == 1  # the payload once, only the ids per frame


def test_anything_but_a_plain_next_of_shared_data_is_left_to_the_usual_encoding() -> None:
    shared = {"operationLog": {"sequence": 1}}
    shared_frames.share(shared)
    encode = CountingEncoder()
    not_shared = [
        next_message("1", {"operationLog": {"sequence": 1}}),  # equal, but not the shared object
        next_message("1", shared, errors=[{"message": "boom"}]),
        next_message("1", shared, extensions={"cost": 1}),
        {"id": "1", "type": "complete"},
        {"type": "next", "payload": {"data": shared}},
        {"id": 1, "type": "next", "payload": {"data": shared}},
        {"id": "1", "type": "next", "payload": {"data": shared}, "extra": True},
    ]
    assert [shared_frames.next_frame(message, encode) for message in not_shared] == [None] * len(not_shared)


def test_the_view_sends_the_same_json_either_way() -> None:
    data = {"operationLog": {"sequence": 5, "at": "2026-01-01T00:00:00+00:00", "message": "ü"}}
    message = next_message("42", data)
    plain = BackupsGraphQL._encode(message)
    shared_frames.share(data)
    view = BackupsGraphQL.__new__(BackupsGraphQL)  # encode_json needs no state
    assert json.loads(view.encode_json(message)) == json.loads(plain) == message
