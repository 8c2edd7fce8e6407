"""Pinning and editing restore points: updateRestorePoint, and deleteRestorePoint refusing a
pinned one with PINNED until it is unpinned."""

from __future__ import annotations

from typing import Any

from tests.support.api import create_and_wait, execute
from tests.support.in_process import InProcessServer

UPDATE = """mutation($id: ID!, $label: String, $note: String, $pinned: Boolean) {
    updateRestorePoint(id: $id, label: $label, note: $note, pinned: $pinned) {
        restorePoint { id label note pinned } userErrors { code message field } } }"""
UPDATE_NO_NOTE = """mutation($id: ID!, $label: String, $pinned: Boolean) {
    updateRestorePoint(id: $id, label: $label, pinned: $pinned) {
        restorePoint { id label note pinned } userErrors { code message field } } }"""
DELETE = "mutation($id: ID!) { deleteRestorePoint(id: $id) { deletedId userErrors { code message field } } }"
READ = "query($id: ID!) { restorePoint(id: $id) { id label note pinned schedule { id } } }"


async def _made(server: InProcessServer, label: str) -> str:
    return (await create_and_wait(server, label))["restorePoint"]["id"]


async def _read(server: InProcessServer, point_id: str) -> dict[str, Any] | None:
    return (await execute(server, READ, id=point_id))["restorePoint"]


async def test_a_pinned_restore_point_is_refused_by_delete_until_unpinned(server: InProcessServer) -> None:
    point_id = await _made(server, "pin me")
    assert await _read(server, point_id) == {
        "id": point_id,
        "label": "pin me",
        "note": None,
        "pinned": False,
        "schedule": None,
    }

    pinned = (await execute(server, UPDATE_NO_NOTE, id=point_id, pinned=True))["updateRestorePoint"]
    assert pinned == {
        "restorePoint": {"id": point_id, "label": "pin me", "note": None, "pinned": True},
        "userErrors": [],
    }

    refused = (await execute(server, DELETE, id=point_id))["deleteRestorePoint"]
    assert refused["deletedId"] is None
    assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [("PINNED", "id")]
    assert "unpin" in refused["userErrors"][0]["message"]
    assert (await _read(server, point_id))["pinned"] is True  # still there, still pinned

    await execute(server, UPDATE_NO_NOTE, id=point_id, pinned=False)
    deleted = (await execute(server, DELETE, id=point_id))["deleteRestorePoint"]
    assert deleted == {"deletedId": point_id, "userErrors": []}
    assert await _read(server, point_id) is None


async def test_label_and_note_are_edited_and_what_is_left_out_is_kept(server: InProcessServer) -> None:
    point_id = await _made(server, "before")
    edited = (await execute(server, UPDATE, id=point_id, label="  after  ", note="why\nit matters"))[
        "updateRestorePoint"
    ]
    assert edited["userErrors"] == []
    assert edited["restorePoint"] == {"id": point_id, "label": "after", "note": "why\nit matters", "pinned": False}

    # Only pinned given: label and note stay.
    kept = (await execute(server, UPDATE_NO_NOTE, id=point_id, pinned=True))["updateRestorePoint"]["restorePoint"]
    assert kept == {"id": point_id, "label": "after", "note": "why\nit matters", "pinned": True}

    # An explicit null note removes it; the pin stays.
    cleared = (await execute(server, UPDATE, id=point_id, note=None))["updateRestorePoint"]["restorePoint"]
    assert cleared == {"id": point_id, "label": "after", "note": None, "pinned": True}
    await execute(server, UPDATE_NO_NOTE, id=point_id, pinned=False)


async def test_bad_edits_are_refused_and_change_nothing(server: InProcessServer) -> None:
    point_id = await _made(server, "steady")
    await execute(server, UPDATE, id=point_id, note="the note")
    for variables, field in (
        ({"label": "   "}, "label"),
        ({"label": "bad\x00label"}, "label"),
        ({"label": "x" * 201}, "label"),
        ({"note": "bell\x07"}, "note"),
        ({"note": "n" * 4001}, "note"),
    ):
        result = (await execute(server, UPDATE, id=point_id, pinned=True, **variables))["updateRestorePoint"]
        assert result["restorePoint"] is None
        assert [(e["code"], e["field"]) for e in result["userErrors"]] == [("INVALID_INPUT", field)], variables
        # Nothing of the request was applied, not even the valid pin beside the bad field.
        assert await _read(server, point_id) == {
            "id": point_id,
            "label": "steady",
            "note": "the note",
            "pinned": False,
            "schedule": None,
        }
    for bad_id in ("rp_000000000000000000000000", "nonsense", "op_000000000000000000000000"):
        result = (await execute(server, UPDATE_NO_NOTE, id=bad_id, pinned=True))["updateRestorePoint"]
        assert [(e["code"], e["field"]) for e in result["userErrors"]] == [("NOT_FOUND", "id")]


async def test_only_an_admin_may_pin(server: InProcessServer) -> None:
    point_id = await _made(server, "guarded")
    operator = server.with_token(server.create_token("pin-operator", "operator"))
    from tests.support.api import execute_errors

    errors = await execute_errors(operator, UPDATE_NO_NOTE, id=point_id, pinned=True)
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    assert (await _read(server, point_id))["pinned"] is False
