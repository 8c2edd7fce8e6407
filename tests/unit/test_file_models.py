"""The config file's models: every rule of the file has a one-line message naming the entry,
the key and the problem, and the first problem reported is the first one a reader meets."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config.config_file import ConfigError, load_config_file, load_recovery_recipients
from server.config.file_models import LOCATION_KINDS, SOURCE_KINDS, EncryptionTable

SITE = "[[sources]]\nname = 's'\nkind = 'settings'\n"
S3 = (
    "[[locations]]\nname = 'b'\nkind = 's3'\nendpoint = 'http://127.0.0.1:9000'\nbucket = 'bkt'\n"
    "access_key_id_env = 'K'\nsecret_access_key_env = 'S'\n"
)
RECIPIENT = "age16mue4vuj5qt22jp80kzaht9wte7p9tchsumgd0aqck7zumqax4tszmpd8l"


def error_of(tmp_path: Path, body: str) -> str:
    path = tmp_path / "backups.toml"
    path.write_text(body)
    with pytest.raises(ConfigError) as raised:
        load_config_file(path, environ={"K": "id", "S": "secret"})
    text = str(raised.value)
    assert text.startswith(f"config file {path}: ") and "\n" not in text, text
    return text.removeprefix(f"config file {path}: ")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("sources = [3]", "sources[0] is not a table"),
        ("[[sources]]\nname = 'x'", "source 'x': kind must be one of settings, folder, database (got None)"),
        ("[[sources]]\nname = 5\nkind = 'settings'", "sources[0]: name must be 1 to 64 of"),
        ("[[sources]]\nname = 'x'\nkind = 'folder'\npath = '  '", "source 'x': a folder source needs a path"),
        ("[[sources]]\nname = 'x'\nkind = 'folder'\npath = 3", "source 'x': a folder source needs a path"),
        (
            "[[sources]]\nname = 'x'\nkind = 'folder'\npath = '/srv'\ninclude = ['a', 'a']",
            "source 'x': include lists the same value twice",
        ),
        (
            "[[sources]]\nname = 'x'\nkind = 'folder'\npath = '/srv'\nexclude = [1]",
            "source 'x': exclude must be a list",
        ),
        (
            "[[sources]]\nname = 'x'\nkind = 'folder'\npath = '/srv'\nverify = 1",
            'source \'x\': verify must be "fast" or "full" (got 1)',
        ),
        ("[[sources]]\nname = 'x'\nkind = 'database'", "source 'x': a database source needs a url (sqlite:///"),
        (
            "[[sources]]\nname = 'x'\nkind = 'database'\nurl = 'sqlite:///a.db'\nschema = 'public'",
            "source 'x': schema applies to PostgreSQL only",
        ),
        (
            "[[sources]]\nname = 'x'\nkind = 'database'\nurl = 'postgresql://h/db'\nschema = ''",
            "source 'x': schema must be a non-empty string",
        ),
        (
            "[[sources]]\nname = 'x'\nkind = 'database'\nurl = 'sqlite:///a.db'\ntables = []",
            "source 'x': tables is empty: leave it out to capture every table",
        ),
        ("locations = [3]\n" + SITE, "locations[0] is not a table"),
        (SITE + "[[locations]]\nname = 'a'\nkind = 's3'", "location 'a': endpoint must be an http:// or https:// URL"),
        (SITE + S3 + "region = 1", "location 'b': region must be a string"),
        (SITE + S3 + "prefix = []", "location 'b': prefix must be a string"),
        (SITE + S3 + "ca_file = ''", "location 'b': ca_file must be the path of a PEM file"),
        (SITE + S3 + "ca_file = 'none.pem'", "location 'b': ca_file "),
        (SITE + S3.replace("'K'", "3"), "location 'b': access_key_id_env must name an environment variable"),
        (
            SITE + S3.replace("access_key_id_env = 'K'\nsecret_access_key_env = 'S'\n", "credentials_file = 3\n"),
            "location 'b': credentials_file must be a path",
        ),
        ("encryption = 3\n" + SITE, "encryption must be an [encryption] table"),
        (SITE + "[encryption]\nrecipient = []", "[encryption]: unknown key 'recipient' (allowed: recipients)"),
        (SITE + "[encryption]\nrecipients = [1]", '[encryption]: recipients must be a list of strings ("age1...")'),
        (
            SITE + "[encryption]\nrecipients = ['AGE-SECRET-KEY-1XYZ']",
            "[encryption]: recipients[0] is a private identity, not a recipient",
        ),
        (
            SITE + "[encryption]\nrecipients = ['ssh-ed25519 AAAA']",
            "[encryption]: recipients[0] 'ssh-ed25519 AAAA' is not an age",
        ),
    ],
)
def test_each_rule_is_one_line_naming_the_entry_key_and_problem(tmp_path: Path, body: str, message: str) -> None:
    assert error_of(tmp_path, body).startswith(message)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # An unknown top-level key comes before anything in the sections.
        ("[[sources]]\nname = 'x'\n[server]\nport = 1", "unknown top-level key 'server'"),
        # In an entry: the name, then the kind, then an unknown key (the first in sorted order), then the rest.
        ("[[sources]]\nname = 'B'\nkind = 'folder'\nexlude = 1", "source 'B': name must be"),
        ("[[sources]]\nname = 'x'\nkind = 'folder'\nzz = 1\naa = 2", "source 'x': unknown key 'aa' for a folder"),
        ("[[sources]]\nname = 'x'\nkind = 'folder'\npath = '/'\nverify = 'x'", "source 'x': verify must be \"fast\""),
        # Entries in the order of the file, sources before locations.
        (
            "[[sources]]\nname = 'a'\nkind = 'folder'\n[[sources]]\nname = 'b'\nkind = 'tape'",
            "source 'a': a folder source needs a path",
        ),
        ("[[locations]]\nname = 'a'\nkind = 'tape'\n[[sources]]\nname = 'x'\nkind = 'tape'", "source 'x': kind must"),
    ],
)
def test_the_problem_reported_is_the_first_a_reader_meets(tmp_path: Path, body: str, message: str) -> None:
    assert error_of(tmp_path, body).startswith(message)


def test_every_key_of_every_kind_has_its_own_line() -> None:
    """A key added to a model without a message would fall back to pydantic's wording."""
    for model in {*SOURCE_KINDS.values(), *LOCATION_KINDS.values(), EncryptionTable}:
        keys = {field.alias or name for name, field in model.model_fields.items()} - {"kind"}
        assert keys <= set(model.EXPECTS), (model.__name__, keys - set(model.EXPECTS))


def test_recovery_recipients_alone_check_only_the_encryption_table(tmp_path: Path) -> None:
    """`backups key` reads the recipients: a location whose credentials this shell lacks, or a
    source with a bad name, does not stop it; a bad recipient does."""
    path = tmp_path / "backups.toml"
    path.write_text(f"[[sources]]\nname = 'Bad'\nkind = 'settings'\n{S3}\n[encryption]\nrecipients = ['{RECIPIENT}']\n")
    assert load_recovery_recipients(path) == (RECIPIENT,)
    assert load_recovery_recipients(None) == ()
    path.write_text(f"{SITE}\n[encryption]\nrecipients = ['{RECIPIENT}', '{RECIPIENT}', 'age1bad']\n")
    with pytest.raises(ConfigError, match=r"\[encryption\]: recipients\[2\] 'age1bad' is not a valid age recipient"):
        load_recovery_recipients(path)


def test_recipients_are_kept_once_each_in_their_order(tmp_path: Path) -> None:
    path = tmp_path / "backups.toml"
    path.write_text(f"{SITE}\n[encryption]\nrecipients = ['{RECIPIENT}', '{RECIPIENT}']\n")
    assert load_config_file(path).recipients == (RECIPIENT,)
