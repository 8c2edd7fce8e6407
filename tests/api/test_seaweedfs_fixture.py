"""The SeaweedFS fixture itself: it answers S3 requests, and wrong credentials are refused."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.support.seaweedfs import SeaweedFS

# Its tests share the session's SeaweedFS with the other S3 modules: one xdist worker runs
# them all, so it is started once.
pytestmark = pytest.mark.xdist_group("seaweedfs")


def test_store_round_trip(seaweedfs: SeaweedFS) -> None:
    bucket = seaweedfs.new_bucket()
    client = seaweedfs.client()
    client.put_object(Bucket=bucket, Key="a b/ünï.txt", Body=b"hello")
    assert client.get_object(Bucket=bucket, Key="a b/ünï.txt")["Body"].read() == b"hello"
    assert [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]] == ["a b/ünï.txt"]


def test_wrong_secret_is_refused(seaweedfs: SeaweedFS) -> None:
    bucket = seaweedfs.new_bucket()
    with pytest.raises(ClientError):
        seaweedfs.client(secret_key="wrong").list_objects_v2(Bucket=bucket)
