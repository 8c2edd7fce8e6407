"""Encrypted copies in the age format (age-encryption.org/v1), through pyrage.

The server's own X25519 identity lives in the data folder (`age-identity.txt`, mode 0600),
made on first use. Identities installed with `backups key import` (an old server's key, a
recovery identity) are added beside it in `age-identities-imported.txt`: they only decrypt.
Every encrypted copy is encrypted to the server's identity and to each recovery recipient the
config names, so each of those keys alone can read it (with the `age` tool too).

pyrage streams (64 KiB age chunks, each authenticated), so memory stays constant whatever the
size. Everything here blocks; callers run it in worker threads.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

import pyrage
from pyrage import x25519

from server.storage.durability import write_atomic

MAGIC = b"age-encryption.org/v1\n"
SUFFIX = ".age"  # an encrypted copy is `<name>.zip.age`: the age tool and people see what it is
IDENTITY_FILE = "age-identity.txt"
IMPORTED_FILE = "age-identities-imported.txt"
_SECRET_LINE = re.compile(r"^AGE-SECRET-KEY-1[0-9A-Z]+$")
_PEEK_LIMIT = 64 * 1024 * 1024  # never decrypt more than this to read a listing's manifest


class KeyMissing(Exception):
    """The copy is encrypted to no key this server holds."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EncryptedDamaged(Exception):
    """The copy is age-encrypted but its bytes do not decrypt (changed, truncated)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadIdentity(Exception):
    """Text that is not an age X25519 identity (AGE-SECRET-KEY-1...)."""


class BadRecipient(Exception):
    """A string that is not an age X25519 recipient (age1...)."""


class Cancelled(Exception):
    """Encryption or decryption stopped because its operation was cancelled."""


def is_encrypted_name(name: str) -> bool:
    return name.lower().endswith(".zip" + SUFFIX)


def is_age_file(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(len(MAGIC)) == MAGIC


def parse_recipient(text: str) -> x25519.Recipient:
    if not text.startswith("age1"):
        raise BadRecipient(f"{text!r} is not an age recipient (age1...)")
    try:
        return x25519.Recipient.from_str(text)
    except pyrage.RecipientError as error:
        raise BadRecipient(f"{text!r} is not an age recipient: {error}") from None


def parse_identities(text: str) -> list[x25519.Identity]:
    """The identities in an age identity file (comments and blank lines skipped); at least one."""
    found = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not _SECRET_LINE.match(line):
            raise BadIdentity(f"line {number} is not an age identity (AGE-SECRET-KEY-1...)")
        try:
            found.append(x25519.Identity.from_str(line))
        except pyrage.IdentityError as error:
            raise BadIdentity(f"line {number} is a damaged age identity ({error})") from None
    if not found:
        raise BadIdentity("it holds no age identity (a line AGE-SECRET-KEY-1...)")
    return found


def emergency_kit(identity: x25519.Identity) -> str:
    """The server identity as a text file `age -d -i` and `backups key import` both read."""
    return (
        "# Backups server identity: keep this file safe and offline; whoever has it can read\n"
        "# every encrypted copy this server made.\n"
        f"# public key: {identity.to_public()}\n"
        "# Restore on a new machine:  backups key import THIS-FILE\n"
        "# Or decrypt one copy:       age -d -i THIS-FILE -o copy.zip copy.zip.age\n"
        f"{identity}\n"
    )


class Keyring:
    """The server's identities in the data folder, read fresh each time (a `backups key
    import` while the server runs counts at once), and the config's recovery recipients."""

    def __init__(self, data_dir: Path, recovery: Sequence[str] = ()) -> None:
        self.data_dir = data_dir
        self.recovery = tuple(recovery)
        self._recovery = [parse_recipient(r) for r in self.recovery]

    def own(self) -> x25519.Identity:
        """The server's identity, made on first use (of two servers at once, the first wins)."""
        path = self.data_dir / IDENTITY_FILE
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                write_atomic(path, emergency_kit(x25519.Identity.generate()).encode(), exclusive=True)
        return parse_identities(path.read_text(encoding="utf-8"))[0]

    def public(self) -> str:
        return str(self.own().to_public())

    def identities(self) -> list[x25519.Identity]:
        found = [self.own()]
        imported = self.data_dir / IMPORTED_FILE
        if imported.exists():
            found += parse_identities(imported.read_text(encoding="utf-8"))
        return found

    def version(self) -> tuple[int, ...]:
        """Changes when an identity is added: a cached 'key missing' is then looked at again."""
        marks = []
        for name in (IDENTITY_FILE, IMPORTED_FILE):
            try:
                marks.append((self.data_dir / name).stat().st_mtime_ns)
            except FileNotFoundError:
                marks.append(0)
        return tuple(marks)

    def install(self, text: str) -> list[str]:
        """Add the identities in `text` (checked first: a bad one changes nothing); returns the
        public keys newly added. The server's own identity stays the one new copies use."""
        new = parse_identities(text)
        known = {str(i.to_public()) for i in self.identities()}
        added = [i for i in new if str(i.to_public()) not in known]
        if added:
            path = self.data_dir / IMPORTED_FILE
            old = path.read_text(encoding="utf-8") if path.exists() else ""
            lines = "".join(f"# public key: {i.to_public()}\n{i}\n" for i in added)
            write_atomic(path, (old + lines).encode())
        return [str(i.to_public()) for i in added]

    def recipients(self) -> list[x25519.Recipient]:
        return [self.own().to_public(), *self._recovery]

    def missing_message(self, path: Path) -> str:
        """Why this server cannot read the copy, naming what it can."""
        count, others = _stanzas(path)
        recovery = ", ".join(self.recovery) or "none"
        if count or others:
            kinds = f"{count} X25519 key(s)" + (f" and {', '.join(others)}" if others else "")
            whom = f"encrypted to {kinds}; age does not record which public keys, and none is one"
        else:
            whom = "encrypted to no key"
        return (
            f"{whom} this server holds (its identity: {self.public()}; recovery recipients: {recovery}); "
            "install the identity it was made with by `backups key import`"
        )

    # -- streaming ------------------------------------------------------------------------

    def encrypt(
        self,
        source: Path,
        out: BinaryIO,
        on_bytes: Callable[[int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        """Encrypt the file `source` into `out` for the server and every recovery recipient."""
        recipients = self.recipients()
        writing = _Writing(out)
        with source.open("rb") as f:
            try:
                pyrage.encrypt_io(_Reading(f, on_bytes, should_stop), writing, recipients)  # type: ignore[arg-type]
            except Exception:
                if should_stop is not None and should_stop():  # pyrage wraps our Cancelled in its own
                    raise Cancelled("cancelled") from None
                writing.raise_failure()
                raise

    def decrypt(
        self,
        source: Path,
        out: BinaryIO,
        on_bytes: Callable[[int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        """Decrypt `source` into `out`; KeyMissing or EncryptedDamaged when it cannot be read.
        What was written to `out` before a damaged chunk must be discarded by the caller."""
        writing = _Writing(out)
        with source.open("rb") as f:
            try:
                pyrage.decrypt_io(_Reading(f, on_bytes, should_stop), writing, self.identities())  # type: ignore[arg-type]
            except pyrage.DecryptError as error:
                if should_stop is not None and should_stop():
                    raise Cancelled("cancelled") from None
                writing.raise_failure()
                if "No matching keys" in str(error):
                    raise KeyMissing(self.missing_message(source)) from None
                raise EncryptedDamaged(f"its age header is damaged ({error})") from None
            except OSError:
                if should_stop is not None and should_stop():
                    raise Cancelled("cancelled") from None
                writing.raise_failure()
                raise EncryptedDamaged(
                    "its encrypted content does not decrypt (changed, damaged or truncated)"
                ) from None

    def peek(self, source: Path, size: int) -> bytes:
        """The first `size` bytes of the plain text (for a listing: the ZIP's first member)."""
        buffer = bytearray()

        class Enough(Exception):
            pass

        class Collect:
            def write(self, data: bytes) -> int:
                buffer.extend(data)
                if len(buffer) >= size:
                    raise Enough
                return len(data)

        try:
            self.decrypt(source, Collect())  # type: ignore[arg-type]
        except (Enough, Cancelled):
            pass
        except EncryptedDamaged:
            if len(buffer) < size:
                raise
        return bytes(buffer[:size])

    def peek_first_member(self, source: Path, limit: int) -> tuple[str, bytes]:
        """The name and content of the first ZIP member (`manifest.json` in a local copy),
        decrypting only as far as it reaches."""
        head = self.peek(source, 30)
        if len(head) < 30 or head[:4] != b"PK\x03\x04":
            raise EncryptedDamaged("its plain text is not a ZIP file")
        (_, _, flags, method, _, _, _, packed, size, name_len, extra_len) = struct.unpack("<4sHHHHHIIIHH", head)
        header = self.peek(source, 30 + name_len + extra_len)
        name = header[30 : 30 + name_len].decode("utf-8", "replace")
        if packed == 0xFFFFFFFF:  # ZIP64: the sizes are in the extra field
            extra = header[30 + name_len :]
            if len(extra) >= 20:
                size, packed = struct.unpack("<QQ", extra[4:20])
        if packed > min(limit, _PEEK_LIMIT) or size > limit:
            raise EncryptedDamaged(f"its first member is {size} bytes, more than the limit of {limit}")
        start = 30 + name_len + extra_len
        data = self.peek(source, start + packed)[start:]
        if method == 8:
            try:
                data = zlib.decompressobj(-15).decompress(data, limit + 1)
            except zlib.error as error:
                raise EncryptedDamaged(f"its first member does not inflate ({error})") from None
        elif method != 0:
            raise EncryptedDamaged(f"its first member uses compression method {method}")
        return name, data


class _Reading:
    """A reader that counts bytes for progress and stops when the operation is cancelled."""

    def __init__(
        self, file: BinaryIO, on_bytes: Callable[[int], None] | None, should_stop: Callable[[], bool] | None
    ) -> None:
        self._file = file
        self._on_bytes = on_bytes
        self._should_stop = should_stop

    def read(self, size: int = -1) -> bytes:
        if self._should_stop is not None and self._should_stop():
            raise Cancelled("cancelled")
        data = self._file.read(size)
        if self._on_bytes is not None and data:
            self._on_bytes(len(data))
        return data

    def readinto(self, buffer: bytearray) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _Writing:
    """The output handed to pyrage, keeping what its write raised: pyrage reports a failed
    write as its own error (EncryptError, or an OSError read as damaged content), so a full
    disk would look like a bad key or a damaged copy. The caller raises the real error."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._failure: BaseException | None = None

    def write(self, data: bytes) -> int:
        try:
            return self._file.write(data)
        except BaseException as failure:
            self._failure = failure
            raise

    def raise_failure(self) -> None:
        """Raise what the output raised, if it did (ENOSPC, EIO, a reader's own stop)."""
        if self._failure is not None:
            raise self._failure


def _stanzas(path: Path) -> tuple[int, list[str]]:
    """How many X25519 stanzas the header has, and the other stanza types it names."""
    count, others = 0, []
    try:
        with path.open("rb") as f:
            if f.readline() != MAGIC:
                return 0, []
            for _ in range(1000):
                line = f.readline(4096)
                if not line or line.startswith(b"---"):
                    break
                if line.startswith(b"-> "):
                    kind = line[3:].split(b" ", 1)[0].strip().decode("ascii", "replace")
                    if kind == "X25519":
                        count += 1
                    elif not kind.endswith("-grease") and kind not in others:
                        others.append(kind)
    except OSError:
        pass
    return count, others


def chmod_private(path: Path) -> None:
    os.chmod(path, 0o600)
