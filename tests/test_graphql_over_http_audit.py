"""The GraphQL over HTTP spec's own audit (npm graphql-http's auditServer, tests/node/http_audit.mjs)
against a real server, with the fast path on and off: no audit may fail, nor warn (its
warnings are the spec's SHOULDs, such as application/graphql-response+json and its status codes)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.support.server_process import ROOT, ServerProcess
from tests.support.web_page import WEB, ensure_installed

pytestmark = pytest.mark.slow

SCRIPT = ROOT / "tests" / "node" / "http_audit.mjs"


@pytest.fixture(scope="module")
def node() -> str:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js/npm are missing: the graphql-http audit runs where they are")
    ensure_installed()
    assert (WEB / "node_modules" / "graphql-http").is_dir()
    return "node"


@pytest.mark.parametrize("fast_execution", ["1", "0"])
def test_the_spec_audit_passes_without_errors_or_warnings(node: str, make_server_process, fast_execution: str) -> None:
    proc: ServerProcess = make_server_process(BACKUPS_FAST_EXECUTION=fast_execution).start()
    done = subprocess.run(
        [node, str(SCRIPT), f"{proc.url}/graphql", proc.token or ""],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    failing = [result for result in results if result["status"] != "ok"]
    for result in failing:
        print(f"{result['status']}: {result['id']} {result['name']}: {result.get('reason')}")
    assert len(results) > 50, results  # the audit ran (1.x has about 60)
    assert failing == []
