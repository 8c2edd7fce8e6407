"""The monitoring kit (deploy/monitoring/): its alert rules pass their `promtool test rules`
unit tests, the dashboard's queries parse, and every metric the rules and the dashboard use is
on a real server's /metrics, so that the kit and the server cannot drift apart."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.api import create_and_wait
from tests.support.in_process import InProcessServer
from tests.support.schedules import create_schedule, far_off_cron

KIT = Path(__file__).resolve().parent.parent / "deploy" / "monitoring"
RULES = KIT / "backups-alerts.yml"
DASHBOARD = KIT / "grafana-dashboard.json"
METRIC = re.compile(r"\bbackups_[a-z0-9_]+")
# Prometheus's own series, not the server's.
PROMETHEUS_OWN = {"up"}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI needs promtool (Debian's package prometheus), and it is missing")
        pytest.skip("promtool is missing (Debian's package prometheus)")
    return found


def run(*args: str, cwd: Path = KIT) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    return said


def dashboard_exprs() -> Iterator[str]:
    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                yield node["expr"]
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    document = json.loads(DASHBOARD.read_text())
    yield from walk(document["panels"])
    for variable in document["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            yield str(query["query"])


def rule_exprs() -> list[str]:
    """Each rule's expression (a block `expr: |` or a one-line one)."""
    found: list[tuple[str, str]] = re.findall(r"expr: \|\n((?:\s{10}.*\n)+)|expr: (.+)", RULES.read_text())
    return [block or line for block, line in found]


def used_metrics() -> set[str]:
    texts = rule_exprs() + list(dashboard_exprs())
    return {name for text in texts for name in METRIC.findall(text)}


def test_the_alert_rules_pass_their_unit_tests() -> None:
    tool = promtool()
    assert "SUCCESS: 8 rules found" in run(tool, "check", "rules", RULES.name)
    assert "SUCCESS" in run(tool, "test", "rules", "tests.yml")


def test_the_dashboard_has_an_installation_selector_and_its_queries_parse(tmp_path: Path) -> None:
    document = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in document["templating"]["list"]}
    assert variables["server_name"]["query"]["query"] == "label_values(backups_server_info, server_name)"
    assert "instance" in variables and variables["server_name"]["multi"] and variables["instance"]["includeAll"]
    panels = [p for p in document["panels"] if p.get("targets")]
    assert len(panels) >= 6
    for panel in panels:  # each panel is narrowed to the installations selected
        for target in panel["targets"]:
            assert 'server_name=~"$server_name", instance=~"$instance"' in target["expr"], panel["title"]
    # Each query as a recording rule: `promtool check rules` parses it as Prometheus would.
    queries = [re.sub(r"\$\{?\w+\}?", ".*", expr) for expr in dashboard_exprs() if "label_values" not in expr]
    rules = {
        "groups": [
            {"name": "dashboard", "rules": [{"record": f"dashboard:q{i}", "expr": q} for i, q in enumerate(queries)]}
        ]
    }
    (tmp_path / "dashboard.yml").write_text(json.dumps(rules))
    assert f"SUCCESS: {len(queries)} rules found" in run(promtool(), "check", "rules", "dashboard.yml", cwd=tmp_path)


async def test_every_metric_the_kit_uses_is_on_a_real_servers_metrics(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    site, share = tmp_path / "site", tmp_path / "share"
    site.mkdir()
    share.mkdir()
    (site / "app.conf").write_text("volume = 3\n")
    config = tmp_path / "backups.toml"
    config.write_text(
        f'[[sources]]\nname = "site"\nkind = "directory"\npath = "{site}"\n\n'
        f'[[locations]]\nname = "share"\nkind = "folder"\npath = "{share}"\n'
    )
    server = make_server(BACKUPS_CONFIG=str(config), BACKUPS_METRICS_PUBLIC="1").start()
    await create_schedule(server, name="nightly", cron=far_off_cron(), copyToLocations=["share"])
    await create_schedule(server, name="paused", cron=far_off_cron(), enabled=False)
    await create_and_wait(server, "one")
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{server.url}/metrics")).text
    served = set()
    for family in text_string_to_metric_families(text):
        served.add(family.name)
        served.update(sample.name for sample in family.samples)
    assert len(rule_exprs()) == 8, "every rule's expression is read"
    used = used_metrics()
    assert {
        "backups_health_status",
        "backups_last_success_timestamp_seconds",
        "backups_location_copy_ok",
        "backups_schedule_last_success_timestamp_seconds",
        "backups_server_info",
    } <= used, used
    assert used - PROMETHEUS_OWN - served == set(), "the kit uses metrics the server does not serve"
