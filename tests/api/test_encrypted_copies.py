"""Encrypted copies (age) through the real server: export, download, upload, import, fetch;
a copy for another key (KEY_MISSING), a damaged one, `backups key export|import`, the
standard `age` tool, an S3 location that encrypts by default, and the README's disaster
recovery on a new machine, step by step."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pyrage
import pytest
from gql import Client, GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.file_upload import FileVar
from pyrage import x25519

from tests.support.api import auth_headers, create_and_wait, execute, execute_errors, wait_for_operation
from tests.support.apply import start_apply
from tests.support.config_file import write_config
from tests.support.in_process import InProcessServer
from tests.support.local_copies import exported_copy
from tests.support.seaweedfs import ACCESS_KEY, SECRET_KEY, SeaweedFS

MAGIC = b"age-encryption.org/v1\n"
OP = "operation { id status } userErrors { code message field }"
COPY_FIELDS = "id fileName path sizeBytes encrypted restorePointId problem"
ROOT = Path(__file__).resolve().parents[2]


async def run(server: InProcessServer, mutation: str, **variables: object) -> dict:
    data = await execute(server, mutation, **variables)
    payload = next(iter(data.values()))
    assert payload["userErrors"] == [], payload
    final = await wait_for_operation(server, payload["operation"]["id"])
    full = await execute(
        server,
        f"query($id: ID!) {{ operation(id: $id) {{ status error {{ code message }} log {{ message }} "
        f"localCopy {{ {COPY_FIELDS} }} restorePoint {{ id checksum }} }} }}",
        id=final["id"],
    )
    return full["operation"]


async def import_copy(server: InProcessServer, copy_id: str) -> dict:
    return await run(server, f"mutation($id: ID!) {{ importLocalCopy(localCopyId: $id) {{ {OP} }} }}", id=copy_id)


async def local_copies(server: InProcessServer) -> list[dict]:
    return (await execute(server, f"{{ localCopies {{ {COPY_FIELDS} }} }}"))["localCopies"]


async def made_point(server: InProcessServer, label: str | None = None) -> dict:
    """A new restore point: id and checksum."""
    point_id = (await create_and_wait(server, label))["restorePoint"]["id"]
    data = await execute(server, "query($id: ID!) { restorePoint(id: $id) { id checksum } }", id=point_id)
    return data["restorePoint"]


async def point_ids(server: InProcessServer) -> set[str]:
    data = await execute(server, "{ restorePoints(first: 100) { edges { node { id } } } }")
    return {edge["node"]["id"] for edge in data["restorePoints"]["edges"]}


async def upload_file(server: InProcessServer, path: Path, filename: str) -> dict:
    query = f"""mutation($file: Upload!) {{ uploadLocalCopy(file: $file) {{
        localCopy {{ {COPY_FIELDS} }} userErrors {{ code message field }} }} }}"""
    transport = AIOHTTPTransport(url=server.graphql_url, headers=auth_headers(server))
    async with Client(transport=transport) as session:
        with path.open("rb") as handle:
            request = GraphQLRequest(query, variable_values={"file": FileVar(handle, filename=filename)})
            result = await session.execute(request, upload_files=True)
    return result["uploadLocalCopy"]


async def download(server: InProcessServer, copy_id: str) -> bytes:
    mutation = """mutation($id: ID!) { createDownloadUrl(localCopyId: $id, expiresInSeconds: 120) {
        signedUrl { url } userErrors { code message } } }"""
    payload = (await execute(server, mutation, id=copy_id))["createDownloadUrl"]
    assert payload["userErrors"] == [], payload
    response = httpx.get(payload["signedUrl"]["url"])  # no credentials: the signed link alone
    assert response.status_code == 200
    encrypted = response.content.startswith(MAGIC)
    assert response.headers["content-type"] == ("application/octet-stream" if encrypted else "application/zip")
    return response.content


def copies_dir(server: InProcessServer) -> Path:
    return server.data_dir / "local-copies"


def server_public_key(server: InProcessServer) -> str:
    text = (server.data_dir / "age-identity.txt").read_text()
    secret = next(line for line in text.splitlines() if line.startswith("AGE-SECRET-KEY-"))
    return str(x25519.Identity.from_str(secret).to_public())


def manifest_of(zip_bytes: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        assert archive.testzip() is None
        first = archive.infolist()[0].filename
        return first


def key_cli(server: InProcessServer, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", "key", *args],
        cwd=ROOT,
        env=server.env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def recovery() -> x25519.Identity:
    return x25519.Identity.generate()


@pytest.fixture
def make_site_server(make_server: Callable[..., InProcessServer], tmp_path: Path) -> Callable[..., InProcessServer]:
    def make(name: str, *, recipients: list[str] = (), locations: str = "") -> InProcessServer:  # type: ignore[assignment]
        folder = tmp_path / f"{name}-config"
        folder.mkdir(exist_ok=True)
        config = write_config(folder, recipients=list(recipients), extra=locations)
        return make_server(name, BACKUPS_CONFIG=str(config))

    return make


# -- export, download, upload, import, apply ------------------------------------------------


async def test_encrypted_export_round_trip(make_site_server, recovery: x25519.Identity, tmp_path: Path) -> None:
    first = make_site_server("first", recipients=[str(recovery.to_public())]).start()
    point = await made_point(first, "before the move")
    copy = await exported_copy(first, point["id"], COPY_FIELDS, encrypt=True)
    assert copy["fileName"].endswith(".zip.age") and copy["encrypted"] is True
    # Listed like a plain copy: its manifest is read by decrypting only the start of the file.
    assert copy["restorePointId"] == point["id"] and copy["problem"] is None
    listed = {c["id"]: c for c in await local_copies(first)}
    assert listed[copy["id"]]["encrypted"] and listed[copy["id"]]["restorePointId"] == point["id"]
    identity_file = first.data_dir / "age-identity.txt"
    assert stat.S_IMODE(identity_file.stat().st_mode) == 0o600

    body = await download(first, copy["id"])
    assert body.startswith(MAGIC) and b"manifest.json" not in body  # age, not a ZIP
    # Each key alone reads it: the recovery identity, and the server's own.
    assert manifest_of(pyrage.decrypt(body, [recovery])) == "manifest.json"
    kit = key_cli(first, "export").stdout
    assert manifest_of(pyrage.decrypt(body, [x25519.Identity.from_str(kit.strip().splitlines()[-1])])) == (
        "manifest.json"
    )

    # A second server with the first one's key: upload the age file, import it, apply it.
    second = make_site_server("second").start()
    kit_file = tmp_path / "kit.txt"
    kit_file.write_text(kit)
    assert key_cli(second, "import", str(kit_file)).returncode == 0
    carried = tmp_path / "carried.zip.age"
    carried.write_bytes(body)
    payload = await upload_file(second, carried, "Carried copy.zip.age")
    assert payload["userErrors"] == [], payload
    uploaded = payload["localCopy"]
    assert uploaded["fileName"] == "Carried-copy.zip.age" and uploaded["encrypted"]
    assert uploaded["restorePointId"] == point["id"] and uploaded["problem"] is None
    imported = await import_copy(second, uploaded["id"])
    assert imported["status"] == "SUCCEEDED", imported
    assert imported["restorePoint"]["checksum"] == point["checksum"]
    assert any("Decrypted" in line["message"] for line in imported["log"])
    assert [p.name for p in copies_dir(second).iterdir()] == ["Carried-copy.zip.age"]  # no plain text left

    site = tmp_path / "second-config" / "site"
    (site / "page.html").write_text("changed")
    done = await wait_for_operation(second, (await start_apply(second, imported["restorePoint"]["id"]))["id"])
    assert done["status"] == "SUCCEEDED", done
    assert (site / "page.html").read_text() == "<h1>été</h1>"


async def test_plain_export_stays_plain(make_site_server) -> None:
    server = make_site_server("plain").start()
    point = await made_point(server)
    copy = await exported_copy(server, point["id"], COPY_FIELDS)
    assert copy["fileName"].endswith(".zip") and copy["encrypted"] is False
    assert (await download(server, copy["id"])).startswith(b"PK")


# -- a copy for another key, a damaged copy ---------------------------------------------------


async def test_copy_encrypted_to_another_key_is_refused(make_site_server, tmp_path: Path) -> None:
    first = make_site_server("first").start()
    point = await made_point(first)
    copy = await exported_copy(first, point["id"], COPY_FIELDS, encrypt=True)
    other = make_site_server("other").start()
    before = await point_ids(other)
    shutil.copy(copy["path"], copies_dir(other) / copy["fileName"])  # copied in by hand

    (listed,) = await local_copies(other)
    assert listed["encrypted"] and listed["restorePointId"] is None
    assert "this server holds" in listed["problem"]
    op = await import_copy(other, listed["id"])
    assert op["status"] == "FAILED" and op["error"]["code"] == "KEY_MISSING", op
    message = op["error"]["message"]
    assert copy["fileName"] in message and server_public_key(other) in message
    assert "1 X25519 key" in message and "backups key import" in message
    assert await point_ids(other) == before
    assert [p.name for p in copies_dir(other).iterdir()] == [copy["fileName"]]  # nothing else written

    # Uploading it is refused too, and leaves nothing.
    carried = tmp_path / "carried.zip.age"
    shutil.copy(copy["path"], carried)
    (copies_dir(other) / copy["fileName"]).unlink()
    payload = await upload_file(other, carried, "carried.zip.age")
    assert payload["localCopy"] is None
    (error,) = payload["userErrors"]
    assert error["code"] == "INVALID_ARCHIVE" and "this server holds" in error["message"]
    assert list(copies_dir(other).iterdir()) == []


@pytest.mark.parametrize("damage", ["flipped", "truncated", "header"])
async def test_damaged_encrypted_copy_is_refused(make_site_server, damage: str) -> None:
    server = make_site_server("damaged").start()
    (site := Path(server.env["BACKUPS_CONFIG"]).parent / "site").joinpath("big.bin").write_bytes(os.urandom(300_000))
    assert site.is_dir()
    point = await made_point(server)
    copy = await exported_copy(server, point["id"], COPY_FIELDS, encrypt=True)
    path = Path(copy["path"])
    data = bytearray(path.read_bytes())
    if damage == "flipped":
        data[len(data) // 2] ^= 0x01
    elif damage == "truncated":
        del data[len(data) - 1000 :]
    else:
        # Inside the recipient stanza's share, one base64 letter swapped for another valid
        # one (a flipped bit could make it no base64 at all, a parse error instead): the
        # header still reads, but no key opens it any more.
        at = len(MAGIC) + 20
        data[at] = ord("A") if data[at] != ord("A") else ord("B")
    path.write_bytes(bytes(data))
    before = await point_ids(server)

    # The restore point is still here: an import would only point at it. Delete it first so
    # the import has something to do, and check nothing comes back.
    deleted = await execute(
        server,
        "mutation($id: ID!) { deleteRestorePoint(id: $id) { userErrors { code message } } }",
        id=point["id"],
    )
    assert deleted["deleteRestorePoint"]["userErrors"] == [], deleted
    before = await point_ids(server)
    op = await import_copy(server, copy["id"])
    assert op["status"] == "FAILED", op
    expected = "KEY_MISSING" if damage == "header" else "INVALID_ARCHIVE"
    assert op["error"]["code"] == expected, op
    if damage != "header":
        assert "does not decrypt" in op["error"]["message"]
    assert await point_ids(server) == before
    assert [p.name for p in copies_dir(server).iterdir()] == [copy["fileName"]]


# -- the key command ------------------------------------------------------------------------


async def test_key_export_and_import(make_site_server, recovery: x25519.Identity, tmp_path: Path) -> None:
    server = make_site_server("keys")
    exported = key_cli(server, "export")
    assert exported.returncode == 0, exported.stderr
    secret_lines = [line for line in exported.stdout.splitlines() if line.startswith("AGE-SECRET-KEY-1")]
    assert len(secret_lines) == 1
    public = str(x25519.Identity.from_str(secret_lines[0]).to_public())
    assert f"public key: {public}" in exported.stdout and "backups key import" in exported.stdout
    assert key_cli(server, "export").stdout == exported.stdout  # made once, the same after
    assert stat.S_IMODE((server.data_dir / "age-identity.txt").stat().st_mode) == 0o600

    damaged = str(recovery)
    damaged = damaged[:-3] + ("A" if damaged[-3] != "A" else "C") + damaged[-2:]
    bad_cases = {
        "garbage": ("hello world\n", "line 1 is not an age identity"),
        "empty": ("# only a comment\n", "holds no age identity"),
        "damaged": (damaged + "\n", "line 1 is a damaged age identity"),
        "public key": (str(recovery.to_public()) + "\n", "line 1 is not an age identity"),
    }
    for name, (text, problem) in bad_cases.items():
        path = tmp_path / f"{name}.txt"
        path.write_text(text)
        result = key_cli(server, "import", str(path))
        assert result.returncode == 2, (name, result)
        assert result.stderr.count("\n") == 1 and problem in result.stderr and "nothing was changed" in result.stderr
        assert str(recovery) not in result.stderr
        assert not (server.data_dir / "age-identities-imported.txt").exists()
    missing = key_cli(server, "import", str(tmp_path / "nowhere.txt"))
    assert missing.returncode == 2 and "cannot be read" in missing.stderr

    added = key_cli(server, "import", "-", stdin=f"# from age-keygen\n{recovery}\n")
    assert added.returncode == 0 and str(recovery.to_public()) in added.stderr
    again = key_cli(server, "import", "-", stdin=f"{recovery}\n")
    assert again.returncode == 0 and "already has that identity" in again.stderr
    assert key_cli(server, "export").stdout == exported.stdout  # the server's own key is unchanged
    imported = server.data_dir / "age-identities-imported.txt"
    assert imported.read_text().count("AGE-SECRET-KEY-") == 1
    assert stat.S_IMODE(imported.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("recipients", "problem"),
    [
        ('["age1notarecipient"]', "recipients[0] 'age1notarecipient' is not a valid age recipient"),
        ('["ssh-ed25519 AAAA"]', "is not an age X25519 recipient (age1...)"),
        ('"age1abc"', "recipients must be a list of strings"),
        ("SECRET", "is a private identity, not a recipient"),
    ],
)
def test_bad_recovery_recipient_stops_the_server(make_server, tmp_path: Path, recipients: str, problem: str) -> None:
    if recipients == "SECRET":
        recipients = f'["{x25519.Identity.generate()}"]'
    config = tmp_path / "bad.toml"
    config.write_text(f'[[sources]]\nname = "settings"\nkind = "settings"\n\n[encryption]\nrecipients = {recipients}\n')
    server = make_server("bad", BACKUPS_CONFIG=str(config))
    result = server.cli("serve", check=False)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and str(config) in result.stderr and problem in result.stderr, result.stderr
    assert "AGE-SECRET-KEY" not in result.stderr
    assert not (server.data_dir / "age-identity.txt").exists()


# -- the standard age tool -----------------------------------------------------------------


async def test_age_tool_decrypts_with_the_recovery_identity(make_site_server, tmp_path: Path) -> None:
    age, keygen = shutil.which("age"), shutil.which("age-keygen")
    if age is None or keygen is None:
        pytest.skip("the age tool is not installed (Debian package `age`; .ci/run installs it in CI)")
    key_file = tmp_path / "recovery.txt"
    subprocess.run([keygen, "-o", str(key_file)], check=True, capture_output=True)
    public = next(line.split(": ", 1)[1] for line in key_file.read_text().splitlines() if "public key" in line)
    server = make_site_server("tool", recipients=[public]).start()
    point = await made_point(server)
    copy = await exported_copy(server, point["id"], COPY_FIELDS, encrypt=True)
    out = tmp_path / "plain.zip"
    subprocess.run([age, "-d", "-i", str(key_file), "-o", str(out), copy["path"]], check=True, capture_output=True)
    with zipfile.ZipFile(out) as archive:
        assert archive.testzip() is None
        assert archive.infolist()[0].filename == "manifest.json"
        assert point["id"] in archive.read("manifest.json").decode()


# -- an S3 location encrypts by default -----------------------------------------------------


async def test_s3_location_encrypts_by_default(seaweedfs: SeaweedFS, make_site_server, tmp_path: Path) -> None:
    bucket = seaweedfs.new_bucket()
    creds = tmp_path / "creds.toml"
    creds.write_text(f'access_key_id = "{ACCESS_KEY}"\nsecret_access_key = "{SECRET_KEY}"\n')
    locations = f"""
[[locations]]
name = "bucket"
kind = "s3"
endpoint = "{seaweedfs.endpoint}"
bucket = "{bucket}"
prefix = "enc/"
credentials_file = "{creds}"
"""
    server = make_site_server("s3", locations=locations).start()
    point = await made_point(server)
    plain = await exported_copy(server, point["id"], COPY_FIELDS)
    op = await run(
        server,
        f'mutation($c: ID!) {{ uploadToLocation(localCopyId: $c, location: "bucket") {{ {OP} }} }}',
        c=plain["id"],
    )
    assert op["status"] == "SUCCEEDED", op
    assert any("encrypting" in line["message"] for line in op["log"])
    state = (
        await execute(
            server,
            """{ locations { name encrypted copies { id fileName encrypted restorePointId } } }""",
        )
    )["locations"]
    bucket_state = next(loc for loc in state if loc["name"] == "bucket")
    assert bucket_state["encrypted"] is True
    (remote,) = bucket_state["copies"]
    assert remote["fileName"] == plain["fileName"] + ".age" and remote["encrypted"] is True
    assert remote["restorePointId"] == point["id"]
    body = seaweedfs.client().get_object(Bucket=bucket, Key="enc/" + remote["fileName"])["Body"].read()
    assert body.startswith(MAGIC)
    assert Path(plain["path"]).read_bytes().startswith(b"PK")  # the local copy stays as it was

    fetched = await run(
        server, f"mutation($id: ID!) {{ fetchFromLocation(remoteCopyId: $id) {{ {OP} }} }}", id=remote["id"]
    )
    assert fetched["status"] == "SUCCEEDED", fetched
    local = fetched["localCopy"]
    assert local["fileName"] == remote["fileName"] and local["encrypted"] and local["restorePointId"] == point["id"]
    assert Path(local["path"]).read_bytes() == body
    imported = await import_copy(server, local["id"])
    assert imported["status"] == "SUCCEEDED" and imported["restorePoint"]["id"] == point["id"], imported

    # Another server on the same bucket, without the key: listed, but its fetch is refused.
    stranger = make_site_server("stranger", locations=locations).start()
    refused = await run(
        stranger, f"mutation($id: ID!) {{ fetchFromLocation(remoteCopyId: $id) {{ {OP} }} }}", id=remote["id"]
    )
    assert refused["status"] == "FAILED" and refused["error"]["code"] == "KEY_MISSING", refused
    assert remote["fileName"] in refused["error"]["message"] and "nothing was kept" in refused["error"]["message"]
    assert server_public_key(stranger) in refused["error"]["message"]
    assert list(copies_dir(stranger).iterdir()) == []


# -- disaster recovery on a new machine (README) ----------------------------------------------


async def test_disaster_recovery_on_a_new_machine(make_site_server, tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()
    locations = f'\n[[locations]]\nname = "share"\nkind = "folder"\npath = "{share}"\nencrypt = true\n'
    recovery_file = tmp_path / "recovery-identity.txt"  # kept away from the server: age-keygen's format
    recovery = x25519.Identity.generate()
    recovery_file.write_text(f"# public key: {recovery.to_public()}\n{recovery}\n")

    # The old machine: copies go encrypted to the share, for its key and the recovery recipient.
    old = make_site_server("old", recipients=[str(recovery.to_public())], locations=locations).start()
    point = await made_point(old, "last good")
    copy = await exported_copy(old, point["id"], COPY_FIELDS)
    op = await run(
        old, f'mutation($c: ID!) {{ uploadToLocation(localCopyId: $c, location: "share") {{ {OP} }} }}', c=copy["id"]
    )
    assert op["status"] == "SUCCEEDED", op
    old.close()  # the machine is gone, and its data folder with it
    shutil.rmtree(old.data_dir)

    # 1. A fresh server on a new machine, its config naming the same location.
    new = make_site_server("new", recipients=[str(recovery.to_public())], locations=locations)
    site = Path(new.env["BACKUPS_CONFIG"]).parent / "site"
    (site / "page.html").write_text("lost")
    # 2. Install the recovery identity.
    installed = key_cli(new, "import", str(recovery_file))
    assert installed.returncode == 0, installed.stderr
    new.start()
    # 3. List the location's copies: the old server's copy is there, its restore point named.
    state = (await execute(new, "{ locations { name copies { id fileName encrypted restorePointId } } }"))["locations"]
    (remote,) = next(loc for loc in state if loc["name"] == "share")["copies"]
    assert remote["encrypted"] and remote["restorePointId"] == point["id"]
    # 4. Fetch it, 5. import it, 6. apply it.
    fetched = await run(
        new, f"mutation($id: ID!) {{ fetchFromLocation(remoteCopyId: $id) {{ {OP} }} }}", id=remote["id"]
    )
    assert fetched["status"] == "SUCCEEDED", fetched
    imported = await import_copy(new, fetched["localCopy"]["id"])
    assert imported["status"] == "SUCCEEDED", imported
    assert imported["restorePoint"]["checksum"] == point["checksum"]
    done = await wait_for_operation(new, (await start_apply(new, imported["restorePoint"]["id"]))["id"])
    assert done["status"] == "SUCCEEDED", done
    assert (site / "page.html").read_text() == "<h1>été</h1>"


KIT = "mutation($confirm: String!) { exportEmergencyKit(confirm: $confirm) { kit userErrors { code field message } } }"


async def test_the_emergency_kit_through_the_api_decrypts_a_copy(make_site_server, tmp_path: Path) -> None:
    """exportEmergencyKit (admin, after typing EXPORT KEY) answers what `backups key export`
    prints, and the standard age tool decrypts an encrypted copy with it; without the words it
    is refused and no key is shown; an operator is refused."""
    server = make_site_server("kit").start()
    point = await made_point(server)
    copy = await exported_copy(server, point["id"], COPY_FIELDS, encrypt=True)
    for confirm in ("", "export key", "EXPORT"):
        refused = (await execute(server, KIT, confirm=confirm))["exportEmergencyKit"]
        assert refused["kit"] is None
        assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [("CONFIRMATION_REQUIRED", "confirm")]
        assert "AGE-SECRET-KEY" not in str(refused)
    operator = server.with_token(server.create_token("kit-operator", "operator"))
    assert (await execute_errors(operator, KIT, confirm="EXPORT KEY"))[0]["extensions"]["code"] == "FORBIDDEN"

    answer = (await execute(server, KIT, confirm="EXPORT KEY"))["exportEmergencyKit"]
    assert answer["userErrors"] == []
    assert answer["kit"] == key_cli(server, "export").stdout  # the same kit as the command line's
    age = shutil.which("age")
    if age is None:
        pytest.skip("the age tool is not installed (Debian package `age`; .ci/run installs it in CI)")
    kit_file = tmp_path / "kit.txt"
    kit_file.write_text(answer["kit"])
    out = tmp_path / "plain.zip"
    subprocess.run([age, "-d", "-i", str(kit_file), "-o", str(out), copy["path"]], check=True, capture_output=True)
    with zipfile.ZipFile(out) as archive:
        assert point["id"] in archive.read("manifest.json").decode()
