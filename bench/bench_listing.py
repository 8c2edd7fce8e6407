"""`restorePoints` with filters (issue 15) at 100,000 rows: the first page and a deep page
(keyset cursor) of a query with every filter, and of a selective text search, against the
same SQL run straight in SQLite (Python's sqlite3, no HTTP, no GraphQL) on the server's own
database, and against our own unfiltered listing at the same depth."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench import api
from bench.context import BenchContext
from bench.measure import median
from bench.report import Row
from bench.seed_rows import insert_varied_restore_points
from bench.servers import our_server
from server.model.ids import new_id
from server.storage.db.cursors import encode_cursor

ROWS = 100_000
DEEP = 25_000  # the deep page starts after this many matches
FIELDS = "id label createdAt sizeBytes itemCount checksum"
QUERY = f"""query($first: Int, $after: String, $origin: [RestorePointOrigin!], $schedule: ID, $pinned: Boolean,
    $createdAfter: DateTime, $createdBefore: DateTime, $search: String) {{
    restorePoints(first: $first, after: $after, origin: $origin, scheduleId: $schedule, pinned: $pinned,
        createdAfter: $createdAfter, createdBefore: $createdBefore, search: $search) {{
        nodes {{ {FIELDS} }} pageInfo {{ endCursor hasNextPage }} }} }}"""
COLUMNS = "id, label, created_at, size_bytes, item_count, checksum"
PAGE = 50


def _sql_filter(case: dict[str, Any]) -> tuple[str, list[Any]]:
    """The WHERE clause the server's repository builds for these filters, as plain SQL."""
    clauses, params = [], []
    if "origin" in case:
        clauses.append(f"origin IN ({', '.join('?' for _ in case['origin'])})")
        params += case["origin"]
    if "schedule" in case:
        clauses.append("schedule_id = ?")
        params.append(case["schedule"])
    if "pinned" in case:
        clauses.append("pinned = ?")
        params.append(int(case["pinned"]))
    if "createdAfter" in case:
        clauses.append("created_at > ?")
        params.append(_stored(case["createdAfter"]))
    if "createdBefore" in case:
        clauses.append("created_at < ?")
        params.append(_stored(case["createdBefore"]))
    if "search" in case:
        clauses.append("(lower(label) LIKE lower(?) ESCAPE '\\' OR lower(note) LIKE lower(?) ESCAPE '\\')")
        params += [f"%{case['search']}%"] * 2
    return " AND ".join(clauses) or "1", params


def _stored(moment: str) -> str:
    """A DateTime variable as SQLAlchemy stores it in SQLite (UTC, no offset)."""
    return datetime.fromisoformat(moment).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


class Direct:
    """The peer: the page's SQL on one sqlite3 connection to the server's database."""

    def __init__(self, database: str) -> None:
        self.connection = sqlite3.connect(database)

    def page(self, case: dict[str, Any], after: tuple[str, str] | None) -> list[tuple[Any, ...]]:
        where, params = _sql_filter(case)
        if after:
            where += " AND (created_at < ? OR (created_at = ? AND id < ?))"
            params = [*params, after[0], after[0], after[1]]
        sql = f"SELECT {COLUMNS} FROM restore_point WHERE {where} ORDER BY created_at DESC, id DESC LIMIT ?"
        return self.connection.execute(sql, [*params, PAGE + 1]).fetchall()[:PAGE]

    def nth(self, case: dict[str, Any], n: int) -> tuple[str, str]:
        """The (created_at, id) of the n-th match, newest first (of the middle one when there
        are fewer than 2n): where the deep page starts."""
        where, params = _sql_filter(case)
        matches = self.connection.execute(f"SELECT count(*) FROM restore_point WHERE {where}", params).fetchone()[0]
        n = min(n, matches // 2)
        sql = (
            f"SELECT created_at, id FROM restore_point WHERE {where} ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET ?"
        )
        return self.connection.execute(sql, [*params, n - 1]).fetchone()  # type: ignore[no-any-return]


def _latencies(call: Callable[[], object], count: int) -> list[float]:
    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(ctx: BenchContext) -> list[Row]:
    now = datetime.now(UTC)
    nightly, hourly = new_id("sch"), new_id("sch")
    cases: dict[str, dict[str, Any]] = {
        "every filter": {
            "origin": ["SCHEDULED"],
            "schedule": nightly,
            "pinned": False,
            "createdAfter": (now - timedelta(days=60)).isoformat(),
            "createdBefore": (now - timedelta(days=1)).isoformat(),
            "search": "nightly",
        },
        "a selective text search": {"search": "zone 17"},  # ~1 in 180 rows, in labels of manual ones
        "no filter": {},
    }
    count = 10 if ctx.quick else 60  # requests per case and run
    samples: dict[tuple[str, str, str], list[float]] = {}
    with our_server("listing") as server:
        database = server.data_dir / "backups.db"
        insert_varied_restore_points(database, ROWS, (nightly, hourly))
        direct = Direct(str(database))
        with httpx.Client(headers=api.headers(server), timeout=60) as client:

            def ours(case: dict[str, Any], after: str | None) -> list[str]:
                variables = {**case, "first": PAGE, "after": after}
                response = client.post(server.graphql_url, json={"query": QUERY, "variables": variables})
                response.raise_for_status()
                body = response.json()
                if body.get("errors"):
                    raise RuntimeError(body["errors"])
                return [node["id"] for node in body["data"]["restorePoints"]["nodes"]]

            plans = []
            for name, case in cases.items():
                start = direct.nth(case, DEEP)
                moment = datetime.fromisoformat(start[0]).replace(tzinfo=UTC)
                for depth, ours_after, peer_after in (
                    ("first page", None, None),
                    ("deep page", encode_cursor(moment, start[1]), start),
                ):
                    # Both answer the same rows, or the comparison means nothing.
                    if ours(case, ours_after) != [row[0] for row in direct.page(case, peer_after)]:
                        raise RuntimeError(f"ours and sqlite3 answer different rows for {name}, {depth}")
                    plans.append((name, depth, case, ours_after, peer_after))
            for _ in range(ctx.runs):
                for name, depth, case, ours_after, peer_after in plans:
                    samples.setdefault((name, depth, "ours"), []).extend(
                        _latencies(lambda: ours(case, ours_after), count)  # noqa: B023 (called at once)
                    )
                    samples.setdefault((name, depth, "sqlite3"), []).extend(
                        _latencies(lambda: direct.page(case, peer_after), count)  # noqa: B023
                    )
        direct.connection.close()
    ms = {key: 1000 * median(values) for key, values in samples.items()}
    p99 = {key: 1000 * _p(values, 0.99) for key, values in samples.items()}
    rows = []
    for name in ("every filter", "a selective text search"):
        for depth in ("first page", "deep page"):
            ours_ms, peer_ms = ms[(name, depth, "ours")], ms[(name, depth, "sqlite3")]
            plain_ms = ms[("no filter", "deep page", "ours")]
            over_plain = ours_ms / plain_ms
            rows.append(
                Row(
                    path=f"`restorePoints(first: 50)` of {ROWS:,} with {name}: {depth}"
                    + (" (cursor after half its matches, at most 25,000)" if depth == "deep page" else ""),
                    ours=f"p50 {ours_ms:.1f} ms, p99 {p99[(name, depth, 'ours')]:.1f} ms",
                    peers=(
                        f"the same SQL in sqlite3 p50 {peer_ms:.2f} ms; ours unfiltered at depth "
                        f"{DEEP:,} p50 {plain_ms:.1f} ms"
                    ),
                    ratio=f"{ours_ms / peer_ms:.1f}x sqlite3, {over_plain:.2f}x ours unfiltered",
                    memory="-",
                    target="p50 <= 2x ours unfiltered at the same depth",
                    met=over_plain <= 2.0,
                    note=NOTE if (name, depth) == ("every filter", "first page") else "",
                    numbers={
                        "p50_ms": {k[2]: v for k, v in ms.items() if k[:2] == (name, depth)},
                        "p99_ms": {k[2]: v for k, v in p99.items() if k[:2] == (name, depth)},
                        "unfiltered_deep_p50_ms": plain_ms,
                        "requests": len(samples[(name, depth, "ours")]),
                    },
                )
            )
    return rows


NOTE = (
    "100,000 restore points inserted straight into the server's SQLite database "
    "(bench/seed_rows.py: of every 20, 12 by a nightly schedule, 4 by an hourly one, 3 manual "
    "with a note, 1 safety; every 25th pinned; one a minute). 'Every filter': origin SCHEDULED, "
    "the nightly schedule, not pinned, created between 60 days and 1 day ago, search 'nightly' "
    "(~49,000 matches); 'a selective text search': 'zone 17' (~550 matches, so the first page "
    "scans ~9,000 rows). Sequential requests on one keep-alive connection, latency per request "
    "(HTTP, token check, GraphQL, SQL). The sqlite3 peer runs the same SQL as the repository on "
    "the same file with no HTTP or GraphQL: the floor; the target compares with our own "
    "unfiltered listing at the same depth (cursor after 25,000 rows), since the unfiltered "
    "first page is served from memory. Every page is checked to hold the same ids in both. "
    "Since migration 0007 the schedule index is (schedule_id, created_at, id), so a listing "
    "by schedule walks it in order (it used to sort all of the schedule's rows in a temp B-tree "
    "for every page: ~220 ms), and the keyset condition is the row value `(created_at, id) < "
    "(?, ?)`, which SQLite seeks (the spelled-out OR form was a scan from the newest row). "
    "What is left over the bare SQL is HTTP, the token check, GraphQL and the count."
)
