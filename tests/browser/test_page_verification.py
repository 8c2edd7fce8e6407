"""Verification on the page, in a real Chromium: "Verify now" in the status region runs
verifyBackups, each restore point row then says it was verified; a blob file removed from the
store makes the next run find the restore point MISSING, which the row names with the item
and the status region links to."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.support.api import create_and_wait
from tests.support.browser import AXE, expect, run, scan
from tests.support.config_file import write_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site_env(root: Path) -> dict[str, str]:
    """A folder source with a file over 1 MiB (stored as a loose blob, which the test removes)."""
    config = write_config(root, settings=False, page=False)
    (root / "site" / "big.bin").write_bytes(os.urandom(2 * 1024 * 1024))
    return {"BACKUPS_CONFIG": str(config)}


def test_verify_now_then_a_missing_blob_is_named_on_its_row(open_page, site, root) -> None:
    point = run(create_and_wait(site, "before the disk died"))["restorePoint"]
    page = open_page()
    page.sign_in(site.token)
    status = page.region("Backup status")
    expect(status).to_contain_text("the newest restore point is not verified yet")
    status.get_by_role("button", name="Verify now").click()
    expect(status.get_by_role("status").filter(has_text="Verifying")).to_be_visible()
    expect(status).to_contain_text("newest restore point verified", timeout=60_000)
    row = page.row(point["label"])
    expect(row).to_contain_text("verified")

    digest = hashlib.sha256((root / "site" / "big.bin").read_bytes()).hexdigest()
    (site.data_dir / "blobs" / digest[:2] / digest[2:]).unlink()
    status.get_by_role("button", name="Verify now").click()
    named = row.get_by_role("note", name="Verification")
    expect(named).to_contain_text("MISSING", timeout=60_000)
    expect(named).to_contain_text("big.bin")
    status.get_by_role("button", name="newest restore point MISSING").click()
    expect(page.page.locator(f"#point-{point['id']}")).to_be_focused()
    if AXE.is_file():
        assert scan(page) == []
    page.shot("verification-missing", full_page=False)
