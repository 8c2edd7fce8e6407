"""Encrypted export (`exportRestorePoint(encrypt: true)`, an age `.zip.age`) of the 1 GiB
tree's restore point, against what a user would do without it: our plain export, then
`age -r ... -o out.age` of that ZIP (the age tool, to the same recipients). Measured in the
same run, each run in turn: (a) plain export, (b) `age` of its ZIP, (c) encrypted export;
ratio c / (a + b). Also the server's memory growth during the encrypted export."""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

import psutil
from pyrage import x25519

from bench import api
from bench.context import BenchContext
from bench.measure import RssSampler, median, timed
from bench.measure import run as run_command
from bench.report import Row, mb
from bench.servers import fresh_dir, our_server
from bench.sources import has_folder_sources, tree_server_env
from bench.workloads import Tree, large_tree

PATH = "encrypted export of the 1 GiB tree (`exportRestorePoint(encrypt: true)`)"
TARGET = "<= 1.1x (plain export + `age`)"


@dataclass
class EncryptedExportResult:
    plain_seconds: list[float]
    age_seconds: list[float]
    encrypted_seconds: list[float]
    plain_size: int
    encrypted_size: int
    age_size: int
    plain_growth: int
    encrypted_growth: int
    # CPU seconds (user + system): on a shared machine wall time moves with the load.
    plain_cpu: list[float]
    age_cpu: list[float]
    encrypted_cpu: list[float]


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def _age(age_path: str, recipients: list[str], source: Path, out: Path) -> tuple[float, float]:
    """Seconds and CPU seconds of one `age -r ... -o out source`."""
    out.unlink(missing_ok=True)
    flags = [part for r in recipients for part in ("-r", r)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds = timed(lambda: run_command([age_path, *flags, "-o", str(out), str(source)]))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def _server_public_key(server: object) -> str:
    """The server's own age public key, from `backups key export` (made on first use)."""
    kit = server.cli("key", "export").stdout  # type: ignore[attr-defined]
    return next(line.split(":", 1)[1].strip() for line in kit.splitlines() if line.startswith("# public key:"))


def _measure(ctx: BenchContext, tree: Tree, env: dict[str, str]) -> EncryptedExportResult:
    scratch = fresh_dir("encrypted-export-age")
    # A recovery recipient in the config, as docs/configuration/encryption.md sets one up: the
    # server's copy is then for two recipients, and so is the peer's `age` run.
    recovery = str(x25519.Identity.generate().to_public())
    config = Path(env["BACKUPS_CONFIG"])
    config.write_text(config.read_text() + f'\n[encryption]\nrecipients = ["{recovery}"]\n')
    plain: list[float] = []
    peer: list[float] = []
    encrypted: list[float] = []
    plain_cpu: list[float] = []
    peer_cpu: list[float] = []
    encrypted_cpu: list[float] = []
    plain_growth: list[int] = []
    encrypted_growth: list[int] = []
    with our_server("encrypted-export", **env) as server:
        process = psutil.Process(server.process.pid)  # type: ignore[union-attr]
        recipients = [_server_public_key(server), recovery]
        point = api.create_restore_point(server)["restorePoint"]
        copies = server.data_dir / "local-copies"
        for _ in range(ctx.runs):
            # (a) plain export. Each step starts with the last one's writes on disk, so none
            # pays for another's write-back; the content store stays in the page cache.
            os.sync()
            cpu = _cpu(process)
            with RssSampler(server.process.pid) as rss:  # type: ignore[union-attr]
                op = api.export(server, point["id"])
            plain_cpu.append(_cpu(process) - cpu)  # includes answering the progress polls
            plain_growth.append(rss.growth)
            plain.append(api.seconds(op))
            plain_zip = copies / op["localCopy"]["fileName"]
            plain_size = plain_zip.stat().st_size
            # (b) the peer: age of that very ZIP, to the same recipients.
            os.sync()
            seconds, cpu = _age(ctx.programs["age"], recipients, plain_zip, scratch / "out.age")
            peer.append(seconds)
            peer_cpu.append(cpu)
            age_size = (scratch / "out.age").stat().st_size
            # Keep the folder to one copy, so each export starts from the same state.
            plain_zip.unlink()
            (scratch / "out.age").unlink()
            # (c) encrypted export.
            os.sync()
            cpu = _cpu(process)
            with RssSampler(server.process.pid) as rss:  # type: ignore[union-attr]
                op = api.export(server, point["id"], encrypt=True)
            encrypted_cpu.append(_cpu(process) - cpu)
            encrypted_growth.append(rss.growth)
            encrypted.append(api.seconds(op))
            sealed = copies / op["localCopy"]["fileName"]
            if not sealed.name.endswith(".zip.age"):
                raise RuntimeError(f"the encrypted export wrote {sealed.name}, not a .zip.age")
            encrypted_size = sealed.stat().st_size
            sealed.unlink()
    return EncryptedExportResult(
        plain,
        peer,
        encrypted,
        plain_size,
        encrypted_size,
        age_size,
        max(plain_growth),
        max(encrypted_growth),
        plain_cpu,
        peer_cpu,
        encrypted_cpu,
    )


def _row(tree: Tree, result: EncryptedExportResult) -> Row:
    a, b, c = median(result.plain_seconds), median(result.age_seconds), median(result.encrypted_seconds)
    ratio = c / (a + b)
    cpu_ratio = median(result.encrypted_cpu) / (median(result.plain_cpu) + median(result.age_cpu))
    return Row(
        path=PATH,
        ours=f"{c:.2f} s ({median(result.encrypted_cpu):.1f} s CPU), {mb(result.encrypted_size)}",
        peers=(
            f"plain export {a:.2f} s ({median(result.plain_cpu):.1f} s CPU) + `age -r -r` of its "
            f"{mb(result.plain_size)} ZIP {b:.2f} s ({median(result.age_cpu):.1f} s CPU) = {a + b:.2f} s"
        ),
        ratio=f"{ratio:.2f}x time ({cpu_ratio:.2f}x CPU)",
        memory=f"server grew {mb(result.encrypted_growth)} (plain export: {mb(result.plain_growth)})",
        target=TARGET,
        met=ratio <= 1.1,
        note=(
            "the export writes and checks the plain ZIP (a hidden temporary file), then encrypts it "
            "file to file with pyrage (rage, a Rust implementation of age: ChaCha20-Poly1305 in 64 KiB chunks) "
            "and fsyncs it: the same two passes as the peer, plus the fsync age does not do; the "
            "encryption pass runs on one thread, like age"
        ),
        numbers={"files": tree.files, "bytes": tree.size, **result.__dict__},
    )


def run(ctx: BenchContext) -> list[Row]:
    large = large_tree() if has_folder_sources() else None
    env = tree_server_env("encrypted-export", large.root) if large else None
    if large is None or env is None:
        return [
            Row(
                path=PATH,
                ours="-",
                peers="-",
                ratio="-",
                memory="-",
                target=TARGET,
                met=None,
                note="this server has no folder source yet, so the tree cannot be captured",
            )
        ]
    return [_row(large, _measure(ctx, large, env))]
