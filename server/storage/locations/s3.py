"""A backup location in S3-compatible object storage, through boto3 in worker threads.

Why boto3: it is the reference S3 client, well kept, speaks every S3-compatible store
(SeaweedFS, MinIO, Garage, Ceph, AWS), and its blocking calls fit the way operations already
run their byte work in a thread (ctx.run_blocking) with progress and cancel checks between
parts. Its clients are thread-safe. Since botocore 1.36 it sends checksum headers that several
S3-compatible stores reject, so checksums are "when_required" both ways.

An upload is a multipart upload with a fixed part size (some stores need equal parts): one
part in memory at a time, aborted on any failure or cancel, so a half-written object never
exists (one a crash cut off is recorded in the data folder and aborted later: unfinished.py);
the object appears only when the upload completes, and is then read back and checked
against the size and SHA-256 sent (deleted if it does not match). Its SHA-256 and restore
point id go into the object's metadata, which a HEAD reads without downloading; heads are
cached per version of an object (its ETag), so listing again is one paginated LIST."""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import quote, unquote

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, EndpointConnectionError

from server.config.locations_file import S3LocationSpec
from server.model.names import is_server_name
from server.model.records import RemoteCopy
from server.storage.encryption import is_encrypted_name
from server.storage.local_copy.folder import split_copy_name
from server.storage.locations.store import (
    CHUNK,
    CopyMismatch,
    LocationUnavailable,
    OnBytes,
    ShouldStop,
    TransferCancelled,
    is_copy_name,
    remote_copy_id,
)
from server.storage.locations.unfinished import STALE_SECONDS, UnfinishedUploads

log = logging.getLogger(__name__)

T = TypeVar("T")
AUTH_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken"}
SHA_KEY, POINT_KEY = "sha256", "restore-point-id"
# The server that made the copy, percent-encoded (S3 metadata travels in ASCII HTTP headers).
SERVER_KEY = "server-name"
_Meta = tuple[str | None, str | None, str | None]  # restore point id, SHA-256, server name


def _meta_of(metadata: dict[str, str]) -> _Meta:
    server = unquote(metadata[SERVER_KEY]) if SERVER_KEY in metadata else None
    return metadata.get(POINT_KEY), metadata.get(SHA_KEY), server if server and is_server_name(server) else None


HEAD_THREADS = 8
CLEANUP_EVERY = 60.0  # seconds between two looks for cut-off uploads while records are left


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float  # seconds to open a connection
    read: float  # seconds without a byte of the answer
    attempts: int  # tries in all, the first included (botocore's "standard" retries: timeouts and 5xx)


QUICK = Timeouts(connect=3, read=3, attempts=2)  # list, HEAD, DELETE, abort
TRANSFER = Timeouts(connect=5, read=15, attempts=2)  # create, part, complete, GET of a body


class S3Store:
    kind = "S3"

    def __init__(
        self,
        spec: S3LocationSpec,
        *,
        part_size: int,
        page_size: int = 1000,
        part_delay: float = 0.0,
        unfinished: UnfinishedUploads | None = None,
    ) -> None:
        self.name = spec.name
        self.spec = spec
        self.encrypt = spec.encrypt  # plain copies uploaded here are age-encrypted on the way
        self.part_size = part_size
        self.page_size = page_size
        self.part_delay = part_delay  # test-only: a pause after each part (BACKUPS_TEST_ENTRY_DELAY)
        self._heads: dict[tuple[str, str], _Meta] = {}
        self._lock = threading.Lock()
        self._unfinished = unfinished  # records of our multipart uploads; None: not recorded
        self._cleaning = threading.Lock()
        self._cleaned_at = float("-inf")
        # Short timeouts everywhere: an endpoint that accepts connections and never answers
        # must cost seconds, not minutes. Listing, HEAD and DELETE answer small at once on any
        # live store; a part upload or a completion may take the store longer to answer.
        self._quick = self._make_client(QUICK)
        self._client = self._make_client(TRANSFER)

    def _make_client(self, timeouts: Timeouts) -> Any:
        spec = self.spec
        # Explicit credentials and region: no lookups in ~/.aws or the cloud metadata service.
        return boto3.session.Session().client(
            "s3",
            endpoint_url=spec.endpoint,
            region_name=spec.region,
            aws_access_key_id=spec.access_key_id.get_secret_value(),
            aws_secret_access_key=spec.secret_access_key.get_secret_value(),
            verify=str(spec.ca_file) if spec.ca_file else True,
            config=Config(
                s3={"addressing_style": "path" if spec.path_style else "virtual"},
                signature_version="s3v4",
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                connect_timeout=timeouts.connect,
                read_timeout=timeouts.read,
                # total_max_attempts counts the first try; botocore's max_attempts would not.
                retries={"total_max_attempts": timeouts.attempts, "mode": "standard"},
                max_pool_connections=HEAD_THREADS + 2,
            ),
        )

    # -- reading ----------------------------------------------------------------------------

    def list(self) -> builtins.list[RemoteCopy]:
        found: builtins.list[dict[str, Any]] = []
        self._clean_up_now_and_then()
        paginator = self._quick.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.spec.bucket,
            Prefix=self.spec.prefix,
            Delimiter="/",  # copies lie directly under the prefix
            PaginationConfig={"PageSize": self.page_size},
        )
        for page in self._call(lambda: list(pages)):
            for item in page.get("Contents", []):
                if is_copy_name(item["Key"][len(self.spec.prefix) :]):
                    found.append(item)
        keep = {(item["Key"], item["ETag"]) for item in found}
        with self._lock:  # forget versions that are gone
            for key in [k for k in self._heads if k not in keep]:
                del self._heads[key]
        copies = [self._describe(item, self._heads.get((item["Key"], item["ETag"]))) for item in found]
        return sorted(copies, key=lambda c: (c.modified_at, c.file_name), reverse=True)

    def details(self, copies: builtins.list[RemoteCopy]) -> builtins.list[RemoteCopy]:
        """The copies with their metadata (restore point id, SHA-256): a HEAD for each not known yet."""
        missing = [copy for copy in copies if not copy.detailed]
        if missing:
            with ThreadPoolExecutor(HEAD_THREADS) as pool:
                heads = list(pool.map(lambda c: self._head(self.spec.prefix + c.file_name), missing))
            for copy, head in zip(missing, heads, strict=True):
                if head is not None:
                    with self._lock:
                        self._heads[(self.spec.prefix + copy.file_name, head["ETag"])] = _meta_of(
                            head.get("Metadata", {})
                        )
        result = []
        for copy in copies:
            if copy.detailed:
                result.append(copy)
                continue
            with self._lock:
                known = self._heads.get((self.spec.prefix + copy.file_name, copy.version))
            result.append(self._fill(copy, known) if known else copy)
        return result

    def stat(self, file_name: str) -> RemoteCopy | None:
        key = self.spec.prefix + file_name
        head = self._head(key)
        if head is None:
            return None
        item = {"Key": key, "Size": head["ContentLength"], "LastModified": head["LastModified"], "ETag": head["ETag"]}
        return self._describe(item, _meta_of(head.get("Metadata", {})))

    def download(self, file_name: str, out: BinaryIO, *, on_bytes: OnBytes, should_stop: ShouldStop) -> None:
        key = self.spec.prefix + file_name
        try:
            body = self._call(lambda: self._client.get_object(Bucket=self.spec.bucket, Key=key))["Body"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                raise FileNotFoundError(f"{key} is no longer in the bucket") from None
            raise
        try:
            for chunk in self._call(lambda: body.iter_chunks(CHUNK)):
                if should_stop():
                    raise TransferCancelled("fetch cancelled")
                out.write(chunk)
                on_bytes(len(chunk))
        finally:
            body.close()

    # -- writing ----------------------------------------------------------------------------

    def upload(
        self,
        source: Path,
        file_name: str,
        *,
        sha256: str,
        restore_point_id: str | None,
        on_bytes: OnBytes,
        should_stop: ShouldStop,
        server_name: str | None = None,
    ) -> str:
        self.abort_unfinished()  # what a crash cut off is aborted at the location's next use
        name = self._free_name(file_name)
        key = self.spec.prefix + name
        metadata = {SHA_KEY: sha256}
        if restore_point_id is not None:
            metadata[POINT_KEY] = restore_point_id
        if server_name is not None:
            metadata[SERVER_KEY] = quote(server_name, safe="")
        bucket = self.spec.bucket
        record = self._unfinished.begin(bucket, key) if self._unfinished else None
        refused = False

        def create() -> dict[str, Any]:
            nonlocal refused
            try:
                return self._client.create_multipart_upload(
                    Bucket=bucket, Key=key, Metadata=metadata, ContentType="application/zip"
                )
            except (ClientError, EndpointConnectionError, ConnectTimeoutError):
                refused = True  # an error answer, or never connected: nothing was created
                raise

        try:
            upload_id = self._call(create)["UploadId"]
        except BaseException:
            # An answer lost on the way (a read timeout) may still have created it: record kept.
            if refused:
                self._end(record)
            else:
                self._release(record)
            raise
        if self._unfinished and record:
            entry = self._unfinished.read(record)
            self._unfinished.created(record, bucket, key, entry.started_at if entry else time.time(), upload_id)
        try:
            parts, size = [], 0
            with source.open("rb") as src:
                number = 1
                while data := src.read(self.part_size):  # one part in memory at a time
                    if should_stop():
                        raise TransferCancelled("upload cancelled")
                    answer = self._call(
                        lambda d=data, n=number: self._client.upload_part(  # type: ignore[misc]
                            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=d
                        )
                    )
                    parts.append({"ETag": answer["ETag"], "PartNumber": number})
                    size += len(data)
                    on_bytes(len(data))
                    number += 1
                    self._pause(should_stop)
            if should_stop():
                raise TransferCancelled("upload cancelled")
            self._call(
                lambda: self._client.complete_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
            )
        except BaseException:
            if self._abort(key, upload_id):
                self._end(record)
            else:
                self._release(record)
            raise
        self._end(record)
        try:
            self._verify(key, size, sha256)
        except BaseException:
            self._delete_quietly(key)
            raise
        return name

    def delete(self, file_name: str) -> bool:
        key = self.spec.prefix + file_name
        if self._head(key) is None:
            return False
        self._call(lambda: self._quick.delete_object(Bucket=self.spec.bucket, Key=key))
        return True

    # -- helpers ----------------------------------------------------------------------------

    def _verify(self, key: str, size: int, sha256: str) -> None:
        """Read the object back: what the store holds must be what was sent."""
        body = self._call(lambda: self._client.get_object(Bucket=self.spec.bucket, Key=key))["Body"]
        digest, got = hashlib.sha256(), 0
        try:
            for chunk in self._call(lambda: body.iter_chunks(CHUNK)):
                digest.update(chunk)
                got += len(chunk)
        finally:
            body.close()
        if got != size or digest.hexdigest() != sha256:
            raise CopyMismatch(f"the object {key} holds {got} bytes with another SHA-256 than the {size} bytes sent")

    def _free_name(self, file_name: str) -> str:
        (stem, ending), counter, candidate = split_copy_name(file_name), 2, file_name
        while self._head(self.spec.prefix + candidate) is not None:
            candidate = f"{stem}-{counter}{ending}"
            counter += 1
        return candidate

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return self._call(lambda: self._quick.head_object(Bucket=self.spec.bucket, Key=key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def _fill(self, copy: RemoteCopy, meta: _Meta) -> RemoteCopy:
        return dataclasses.replace(copy, restore_point_id=meta[0], sha256=meta[1], server_name=meta[2], detailed=True)

    def _describe(self, item: dict[str, Any], meta: _Meta | None) -> RemoteCopy:
        name = item["Key"][len(self.spec.prefix) :]
        copy = RemoteCopy(
            id=remote_copy_id(self.name, name),
            location=self.name,
            file_name=name,
            size=int(item["Size"]),
            modified_at=item["LastModified"],
            encrypted=is_encrypted_name(name),
            restore_point_id=None,
            problem=None,
            detailed=False,
            version=str(item["ETag"]),
        )
        return self._fill(copy, meta) if meta is not None else copy

    def _abort(self, key: str, upload_id: str, bucket: str | None = None) -> bool:
        """Abort an upload; False when the store could not be told (its record then stays,
        and a later cleanup tries again)."""
        try:
            self._quick.abort_multipart_upload(Bucket=bucket or self.spec.bucket, Key=key, UploadId=upload_id)
        except ClientError as error:
            return error.response.get("Error", {}).get("Code") in ("NoSuchUpload", "404")  # already gone
        except BotoCoreError:
            return False
        return True

    def _end(self, record: str | None) -> None:
        if self._unfinished and record:
            self._unfinished.end(record)

    def _release(self, record: str | None) -> None:
        if self._unfinished and record:
            self._unfinished.release(record)

    # -- uploads a crash cut off ------------------------------------------------------------

    def abort_unfinished(self) -> int:
        """Abort the multipart uploads this server started and no running upload owns (a crash
        cut them off); how many were aborted. Another server's uploads are never touched."""
        if self._unfinished is None or not self._cleaning.acquire(blocking=False):
            return 0
        try:
            self._cleaned_at = time.monotonic()
            aborted = 0
            for entry in self._unfinished.left_over():
                if entry.upload_id is not None:
                    targets = [(entry.key, entry.upload_id)]
                else:  # cut off before its id was written: the store's uploads of that key
                    now = time.time()
                    targets = [
                        (u["Key"], u["UploadId"])
                        for u in self._pending_uploads(entry.bucket, entry.key)
                        if entry.matches(u["Key"], u["UploadId"], u["Initiated"], now)
                    ]
                done = [self._abort(key, upload_id, entry.bucket) for key, upload_id in targets]
                if not all(done):
                    return aborted + sum(done)  # the store does not answer: tried again later
                aborted += len(done)
                if entry.upload_id is not None or targets or time.time() - entry.started_at > STALE_SECONDS * 2:
                    self._unfinished.end(entry.record)
            if aborted:
                log.info("location %s: aborted %d multipart uploads a stopped server left", self.name, aborted)
            return aborted
        except LocationUnavailable:
            return 0
        finally:
            self._cleaning.release()

    def _pending_uploads(self, bucket: str, key: str) -> builtins.list[dict[str, Any]]:
        pages = self._quick.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=key)
        return [u for page in self._call(lambda: list(pages)) for u in page.get("Uploads", [])]

    def _clean_up_now_and_then(self) -> None:
        if self._unfinished is not None and time.monotonic() - self._cleaned_at >= CLEANUP_EVERY:
            self.abort_unfinished()

    def _delete_quietly(self, key: str) -> None:
        with contextlib.suppress(BotoCoreError, ClientError):
            self._client.delete_object(Bucket=self.spec.bucket, Key=key)

    def _pause(self, should_stop: ShouldStop) -> None:
        deadline = time.monotonic() + self.part_delay
        while time.monotonic() < deadline and not should_stop():
            time.sleep(0.02)

    def _call(self, work: Callable[[], T]) -> T:
        """Run one request; an unreachable store or refused credentials become LocationUnavailable."""
        try:
            return work()
        except BotoCoreError as error:
            raise LocationUnavailable(self.name, f"cannot reach {self.spec.endpoint}: {error}") from None
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in AUTH_CODES or code in ("403", "401"):
                raise LocationUnavailable(self.name, f"{self.spec.endpoint} refuses the credentials ({code})") from None
            if code in ("NoSuchBucket",):
                raise LocationUnavailable(self.name, f"the bucket {self.spec.bucket!r} does not exist") from None
            raise
