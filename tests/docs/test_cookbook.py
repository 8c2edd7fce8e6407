"""The API cookbook (docs/api/cookbook.md) runs: every query in it, in a flow that follows the
page, against a real server started with the page's own config file, and each answer has the
shape of the response the page shows (the same fields, nested the same way, values of the same
kinds). A query the flow does not run fails the test, so a new recipe needs a step here.

COOKBOOK_DUMP=path writes what the server answered to a JSON file, to refresh the page's samples."""

from __future__ import annotations

import asyncio
import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from gql import Client, FileVar, GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport
from graphql import OperationDefinitionNode, parse

from tests.docs.markdown_blocks import DOCS, Block, blocks
from tests.support.api import (
    auth_headers,
    execute,
    wait_for_change_listeners,
    wait_for_operation,
    ws_transport,
)

COOKBOOK = DOCS / "api" / "cookbook.md"
# Where the page's config file points, and where the test's server finds them instead.
DOC_SOURCE_FOLDER = "/etc/mediaserver"
DOC_LOCATION_FOLDER = "/mnt/usb/backups"
DUMP = os.environ.get("COOKBOOK_DUMP")


def sample_of(block: Block) -> Any:
    try:
        return json.loads(block.text)
    except json.JSONDecodeError:
        if DUMP:  # refreshing the samples: the page may hold placeholders
            return None
        raise AssertionError(f"{block.where()}: not JSON") from None


class Recipe:
    def __init__(self, block: Block) -> None:
        document = parse(block.text)
        (operation,) = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        assert operation.name is not None, f"{block.where()}: a cookbook query needs a name"
        self.name = operation.name.value
        self.kind = operation.operation.value
        self.block = block
        self.query = block.text
        self.variables: dict[str, Any] = {}
        self.sample: Any = None


def read_cookbook() -> tuple[dict[str, Recipe], dict[str, str], str]:
    """The recipes by operation name, the HTTP samples by title, and the config file."""
    recipes: dict[str, Recipe] = {}
    http: dict[str, str] = {}
    config = ""
    current: Recipe | None = None
    for block in blocks(COOKBOOK):
        if block.lang == "graphql":
            current = Recipe(block)
            assert current.name not in recipes, f"{block.where()}: {current.name} is named twice"
            recipes[current.name] = current
        elif block.lang == "toml":
            config = block.text
        elif block.title and block.title.startswith("GET "):
            http[block.title] = block.text
        elif block.lang == "json" and current is not None and block.title == "Variables":
            current.variables = json.loads(block.text)
        elif block.lang == "json" and current is not None and block.title in ("Response", "Events"):
            assert (block.title == "Events") == (current.kind == "subscription"), block.where()
            current.sample = sample_of(block)
    return recipes, http, config


def kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def shape_problems(sample: Any, real: Any, path: str = "") -> list[str]:
    """How `real` differs in shape from `sample`: the same keys in every object, values of the
    same kind. A null in the sample stands for any
    value; a scalar may be null in the real answer; a list's items are shaped like the sample's
    item at the same place (or its first, past the sample's end). A settings document (`settings`, a setting's
    `before`/`after`) is JSON data: its sample shows some of its keys."""
    if sample is None:
        return []
    if isinstance(sample, dict):
        if not isinstance(real, dict):
            return [f"{path or '.'}: the page shows an object, the server answered {real!r}"]
        data = path.endswith(".settings")
        missing = sorted(set(sample) - set(real))
        extra = [] if data else sorted(set(real) - set(sample))
        problems = [f"{path}.{key}: shown on the page, not in the answer" for key in missing]
        problems += [f"{path}.{key}: in the answer, not shown on the page" for key in extra]
        for key in sample.keys() & real.keys():
            if not (data or (re.search(r"settingsChanges\[\d+\]$", path) and key in ("before", "after"))):
                problems += shape_problems(sample[key], real[key], f"{path}.{key}")
        return problems
    if isinstance(sample, list):
        if not isinstance(real, list):
            return [f"{path}: the page shows a list, the server answered {real!r}"]
        if sample and not real:
            return [f"{path}: the page shows items, the server answered an empty list"]
        problems = []
        for index, item in enumerate(real if sample else []):  # the sample's item at the same place, else its first
            problems += shape_problems(sample[index if index < len(sample) else 0], item, f"{path}[{index}]")
        return problems
    if real is not None and kind_of(real) != kind_of(sample):
        return [f"{path}: the page shows a {kind_of(sample)}, the server answered {real!r}"]
    return []


class Flow:
    """Runs the recipes against one server and checks each answer against its sample."""

    def __init__(self, server: Any, recipes: dict[str, Recipe]) -> None:
        self.server = server
        self.recipes = recipes
        self.ran: list[str] = []
        self.answers: dict[str, Any] = {}

    def _check(self, recipe: Recipe, answer: Any) -> None:
        self.ran.append(recipe.name)
        self.answers[recipe.name] = answer
        if DUMP:
            return
        assert recipe.sample is not None, f"{recipe.block.where()}: {recipe.name} shows no response"
        if recipe.kind == "subscription":
            sample_events = recipe.sample
            assert isinstance(sample_events, list) and sample_events and answer, recipe.name
            problems = shape_problems(sample_events[0], {"data": answer[0]}, recipe.name + "[first]")
            problems += shape_problems(sample_events[-1], {"data": answer[-1]}, recipe.name + "[last]")
        else:
            problems = shape_problems(recipe.sample, {"data": answer}, recipe.name)
        assert problems == [], f"{recipe.block.where()}: {recipe.name}: " + "; ".join(problems)

    def variables(self, name: str, **given: Any) -> dict[str, Any]:
        return {**self.recipes[name].variables, **given}

    async def query(self, name: str, **given: Any) -> dict[str, Any]:
        recipe = self.recipes[name]
        answer = await execute(self.server, recipe.query, **self.variables(name, **given))
        self._check(recipe, answer)
        return answer

    async def subscription(self, name: str, events: int | None = None, **given: Any) -> list[dict[str, Any]]:
        """The subscription's events until it completes, or its first `events`."""
        recipe = self.recipes[name]
        received: list[dict[str, Any]] = []
        async with Client(transport=ws_transport(self.server)) as session:
            request = GraphQLRequest(recipe.query, variable_values=self.variables(name, **given) or None)
            async for event in session.subscribe(request):
                received.append(event)
                if events is not None and len(received) >= events:
                    break
        self._check(recipe, received)
        return received

    async def upload(self, name: str, path: Path) -> dict[str, Any]:
        recipe = self.recipes[name]
        transport = AIOHTTPTransport(url=self.server.graphql_url, headers=auth_headers(self.server))
        async with Client(transport=transport) as session:
            with path.open("rb") as handle:
                request = GraphQLRequest(recipe.query, variable_values={"file": FileVar(handle, filename=path.name)})
                answer = await session.execute(request, upload_files=True)
        self._check(recipe, answer)
        return answer


def write_config(text: str, tmp_path: Path) -> Path:
    folder, location = tmp_path / "mediaserver", tmp_path / "usb"
    (folder / "displays").mkdir(parents=True)
    (folder / "player.yaml").write_text("volume: 80\nstartup: welcome\n")
    (folder / "displays" / "lobby.json").write_text('{"input": "HDMI2", "brightness": 65}\n')
    location.mkdir()
    assert DOC_SOURCE_FOLDER in text and DOC_LOCATION_FOLDER in text, text
    config = tmp_path / "backups.toml"
    config.write_text(text.replace(DOC_SOURCE_FOLDER, str(folder)).replace(DOC_LOCATION_FOLDER, str(location)))
    return config


def check_metrics(sample: str, real: str) -> None:
    """Each `# TYPE` line the page shows is in the answer, and each metric it shows is there."""
    for line in sample.splitlines():
        if line.startswith("# TYPE"):
            assert line in real.splitlines(), f"/metrics has no line {line!r}"
        elif line and not line.startswith("#"):
            name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line)
            assert name and re.search(rf"^{re.escape(name[0])}[{{ ]", real, re.MULTILINE), f"/metrics has no {line!r}"


async def test_every_cookbook_query_runs_and_answers_as_shown(make_server, tmp_path: Path) -> None:
    recipes, http, config_text = read_cookbook()
    config = write_config(config_text, tmp_path)
    server = make_server(BACKUPS_CONFIG=str(config)).start()
    flow = Flow(server, recipes)

    # The first hour.
    await flow.query("Me")
    created = (await flow.query("CreateRestorePoint"))["createRestorePoint"]
    op_id = created["operation"]["id"]
    progress = await flow.subscription("FollowOperation", id=op_id)
    assert progress[-1]["operationProgress"]["status"] == "SUCCEEDED"
    await flow.subscription("FollowLog", id=op_id, afterSequence=0)
    point_id = (await flow.query("OperationState", id=op_id))["operation"]["restorePoint"]["id"]

    # History: two more restore points, so that a page of two has a next one.
    for label in ("after cabling", "weekly check"):
        made = await execute(server, recipes["CreateRestorePoint"].query, label=label)
        await wait_for_operation(server, made["createRestorePoint"]["operation"]["id"])
    history = (await flow.query("History"))["restorePoints"]
    assert history["pageInfo"]["hasNextPage"] and history["totalCount"] == 3
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    filtered = (await flow.query("FilteredHistory", createdAfter=yesterday))["restorePoints"]
    assert [node["id"] for node in filtered["nodes"]] == [point_id]
    await flow.query("RestorePointDetail", id=point_id)
    await flow.query("PinRestorePoint", id=point_id)
    await flow.query("RecentOperations")

    # Every operation, as a list follows them.
    events: list[dict[str, Any]] = []

    async def until_done() -> None:
        async with Client(transport=ws_transport(server)) as session:
            request = GraphQLRequest(recipes["AllOperations"].query)
            async for event in session.subscribe(request):
                events.append(event)
                if event["operationsChanged"]["done"]:
                    return

    listening = asyncio.create_task(until_done())
    await wait_for_change_listeners(server, 1)
    await execute(server, recipes["CreateRestorePoint"].query, label="from the operations list")
    await asyncio.wait_for(listening, 60)
    flow._check(recipes["AllOperations"], events)

    # Export and download.
    export = (await flow.query("ExportRestorePoint", id=point_id))["exportRestorePoint"]["operation"]
    await wait_for_operation(server, export["id"])
    copy = (await flow.query("ExportedCopy", id=export["id"]))["operation"]["localCopy"]
    link = (await flow.query("CreateDownloadUrl", localCopyId=copy["id"]))["createDownloadUrl"]["signedUrl"]
    async with httpx.AsyncClient() as client:
        download = await client.get(link["url"])  # no token: the link is the credential
    assert download.status_code == 200 and "attachment" in download.headers["content-disposition"]
    await flow.query("LocalCopies")

    # Upload and import.
    carried = tmp_path / "copy.zip"
    carried.write_bytes(download.content)
    uploaded = (await flow.upload("UploadLocalCopy", carried))["uploadLocalCopy"]["localCopy"]
    assert uploaded["restorePointId"] == point_id
    imported = (await flow.query("ImportLocalCopy", localCopyId=uploaded["id"]))["importLocalCopy"]["operation"]
    done = await wait_for_operation(server, imported["id"])
    assert done["status"] == "SUCCEEDED" and done["restorePoint"]["id"] == point_id  # already here

    # Apply with a preview.
    await flow.query("ChangeSetting")
    (tmp_path / "mediaserver" / "player.yaml").write_text("volume: 65\nstartup: welcome\n")
    preview = (await flow.query("ApplyPreview", id=point_id))["applyPreview"]
    assert {change["source"] for change in preview["changes"]["nodes"]} == {"settings", "media-config"}
    refused = (await flow.query("ApplyUnconfirmed", id=point_id))["applyRestorePoint"]
    assert refused["userErrors"][0]["code"] == "CONFIRMATION_REQUIRED"
    await flow.subscription("SystemState", events=1)
    applied = await flow.query("ApplyRestorePoint", id=point_id, confirm=point_id, fingerprint=preview["fingerprint"])
    apply_op = applied["applyRestorePoint"]["operation"]
    assert (await wait_for_operation(server, apply_op["id"]))["status"] == "SUCCEEDED"
    await flow.query("ApplyReport", id=apply_op["id"])
    assert (tmp_path / "mediaserver" / "player.yaml").read_text().startswith("volume: 80")

    # Schedules.
    schedule = (await flow.query("CreateSchedule"))["createSchedule"]["schedule"]
    run = (await flow.query("RunSchedule", id=schedule["id"]))["runSchedule"]["operation"]
    await wait_for_operation(server, run["id"])
    scheduled = (await flow.query("ScheduledRun", id=run["id"]))["operation"]
    assert scheduled["copiesFailed"] == [] and scheduled["copiesMade"][0]["location"] == "usb-disk"
    await flow.query("Locations")
    await flow.query("RetentionPreview", id=schedule["id"])
    await flow.query("Schedules")
    await flow.query("PauseSchedule", id=schedule["id"])

    # Monitoring.
    await flow.query("BackupHealth")
    async with httpx.AsyncClient(base_url=server.url) as client:
        health = await client.get("/health")
        backups = await client.get("/health/backups", headers=auth_headers(server))
        metrics = await client.get("/metrics", headers=auth_headers(server))
    if DUMP:
        answers = {**flow.answers, "GET /health": health.json(), "GET /health/backups": backups.json()}
        Path(DUMP).write_text(json.dumps({**answers, "GET /metrics": metrics.text}, indent=2))
        return
    assert health.json() == json.loads(http["GET /health"])
    assert shape_problems(json.loads(http["GET /health/backups"]), backups.json(), "/health/backups") == []
    check_metrics(http["GET /metrics (some of its lines)"], metrics.text)
    assert sorted(flow.ran) == sorted(recipes), "every query of the cookbook is run"
