"""Ids and names with a trailing newline (or other look-alikes) name nothing, everywhere.

`re.match` with `...$` accepts "rp_...\\n"; base64 decoding skips characters outside its
alphabet. Each look-alike of a real id must be NOT_FOUND (or INVALID_INPUT), and must
change nothing: the real object is still there, whole.
"""

from __future__ import annotations

from tests.support.api import create_and_wait, execute, update_settings
from tests.support.local_copies import export_operation
from tests.support.server_process import ServerProcess

PAYLOAD = "userErrors { code field }"
LOOK_ALIKES = ("\n", "\r\n", " ", "=", "\n\n")


async def _exported(server: ServerProcess) -> tuple[dict, dict]:
    await update_settings(server, "setup", {"lookalikeColour": "teal"})
    final = await create_and_wait(server, "look-alike target")
    point = final["restorePoint"]
    done = await export_operation(server, point["id"])
    state = await execute(server, "query($id: ID!) { operation(id: $id) { localCopy { id fileName } } }", id=done["id"])
    return point, {**state["operation"]["localCopy"], "operation": done["id"]}


async def test_look_alike_ids_are_not_found_and_change_nothing(server: ServerProcess) -> None:
    point, copy = await _exported(server)
    for tail in LOOK_ALIKES:
        rp, lc, op = point["id"] + tail, copy["id"] + tail, copy["operation"] + tail

        assert (await execute(server, "query($id: ID!) { restorePoint(id: $id) { id } }", id=rp))[
            "restorePoint"
        ] is None
        assert (await execute(server, "query($id: ID!) { node(id: $id) { id } }", id=rp))["node"] is None
        assert (await execute(server, "query($id: ID!) { localCopy(id: $id) { id } }", id=lc))["localCopy"] is None
        assert (await execute(server, "query($id: ID!) { operation(id: $id) { id } }", id=op))["operation"] is None

        mutations = {
            "deleteRestorePoint": ("mutation($id: ID!) { deleteRestorePoint(id: $id) { %s } }", rp, "id"),
            "exportRestorePoint": (
                "mutation($id: ID!) { exportRestorePoint(restorePointId: $id) { %s } }",
                rp,
                "restorePointId",
            ),
            "applyRestorePoint": (
                "mutation($id: ID!, $c: String!) { applyRestorePoint(restorePointId: $id, confirm: $c) { %s } }",
                rp,
                "restorePointId",
            ),
            "importLocalCopy": ("mutation($id: ID!) { importLocalCopy(localCopyId: $id) { %s } }", lc, "localCopyId"),
            "deleteLocalCopy": ("mutation($id: ID!) { deleteLocalCopy(id: $id) { %s } }", lc, "id"),
            "createDownloadUrl": (
                "mutation($id: ID!) { createDownloadUrl(localCopyId: $id, expiresInSeconds: 60) { %s } }",
                lc,
                "localCopyId",
            ),
            "cancelOperation": ("mutation($id: ID!) { cancelOperation(id: $id) { %s } }", op, "id"),
            "dismissOperation": ("mutation($id: ID!) { dismissOperation(id: $id) { %s } }", op, "id"),
        }
        for name, (query, value, field) in mutations.items():
            extra = {"c": value} if "$c" in query else {}
            data = (await execute(server, query % PAYLOAD, id=value, **extra))[name]
            assert data["userErrors"] == [{"code": "NOT_FOUND", "field": field}], (name, repr(value), data)

        settings = await execute(
            server,
            f'mutation($m: String!) {{ updateSettings(module: $m, values: {{lookalikeColour: "red"}}) {{ {PAYLOAD} }} }}',
            m="setup" + tail,
        )
        assert settings["updateSettings"]["userErrors"] == [{"code": "NOT_FOUND", "field": "module"}], repr(tail)

    # Nothing was changed, removed or added by any of them.
    still = await execute(server, "query($id: ID!) { restorePoint(id: $id) { id localCopies { id } } }", id=point["id"])
    assert still["restorePoint"] == {"id": point["id"], "localCopies": [{"id": copy["id"]}]}
    op = await execute(server, "query($id: ID!) { operation(id: $id) { id status dismissed } }", id=copy["operation"])
    assert op["operation"] == {"id": copy["operation"], "status": "SUCCEEDED", "dismissed": False}
    modules = {m["name"]: m["settings"] for m in (await execute(server, "{ modules { name settings } }"))["modules"]}
    assert modules["setup"]["lookalikeColour"] == "teal"
    assert not [name for name in modules if name != name.strip()]
    listed = [c["id"] for c in (await execute(server, "{ localCopies { id } }"))["localCopies"]]
    assert copy["id"] in listed and all(c == c.strip() for c in listed)
