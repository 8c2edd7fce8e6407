"""[[locations]] in the config file: a full example parses; every bad one is one line naming
the file, the location and the problem; credentials never appear in a message or a repr."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from server.config.config_file import ConfigError, load_config_file
from server.config.locations_file import FolderLocationSpec, S3LocationSpec

SOURCES = '[[sources]]\nname = "settings"\nkind = "settings"\n\n[[sources]]\nname = "site"\nkind = "directory"\npath = "site"\n'
S3 = """
[[locations]]
name = "offsite"
kind = "s3"
endpoint = "https://s3.example.net:9000/"
region = "eu-west-1"
bucket = "backups-bucket"
prefix = "/hall/one/"
path_style = false
access_key_id_env = "TEST_KEY_ID"
secret_access_key_env = "TEST_SECRET"
"""
ENV = {"TEST_KEY_ID": "AKIDEXAMPLE", "TEST_SECRET": "very-secret-value"}


def load(tmp_path: Path, text: str, env: dict[str, str] = ENV) -> tuple:
    path = tmp_path / "backups.toml"
    path.write_text(SOURCES + text)
    return load_config_file(
        path, data_dir=tmp_path / "data", local_copies_dir=tmp_path / "data" / "local-copies", environ=env
    ).locations


def test_full_example(tmp_path: Path) -> None:
    (tmp_path / "creds.toml").write_text('access_key_id = "id2"\nsecret_access_key = "secret2"\n')
    text = (
        S3
        + f"""
[[locations]]
name = "usb-disk"
kind = "folder"
path = "{tmp_path / "usb"}"

[[locations]]
name = "minio"
kind = "s3"
endpoint = "http://127.0.0.1:9000"
bucket = "b12"
credentials_file = "creds.toml"
"""
    )
    offsite, usb, minio = load(tmp_path, text)
    assert isinstance(offsite, S3LocationSpec) and isinstance(minio, S3LocationSpec)
    assert (offsite.endpoint, offsite.region, offsite.bucket, offsite.prefix, offsite.path_style) == (
        "https://s3.example.net:9000",
        "eu-west-1",
        "backups-bucket",
        "hall/one/",
        False,
    )
    assert offsite.access_key_id.get_secret_value() == "AKIDEXAMPLE"
    assert offsite.secret_access_key.get_secret_value() == "very-secret-value"
    assert usb == FolderLocationSpec("usb-disk", tmp_path / "usb")
    assert (minio.prefix, minio.path_style, minio.region) == ("", True, "us-east-1")
    assert minio.secret_access_key == SecretStr("secret2")
    for spec in (offsite, minio):  # a repr (a log line, a traceback) never shows a credential
        assert "very-secret" not in repr(spec) and "secret2" not in repr(spec) and "AKIDEXAMPLE" not in repr(spec)


def test_keep_last_per_location(tmp_path: Path) -> None:
    text = S3 + f'keepLast = 7\n\n[[locations]]\nname = "usb"\nkind = "folder"\npath = "{tmp_path / "usb"}"\n'
    offsite, usb = load(tmp_path, text)
    assert (offsite.keep_last, usb.keep_last) == (7, None)


def test_no_file_no_locations() -> None:
    assert load_config_file(None).locations == ()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[[locations]]\nname = "Bad Name"\nkind = "folder"\npath = "x"\n', "location 'Bad Name': name must be"),
        (
            '[[locations]]\nname = "local"\nkind = "folder"\npath = "x"\n',
            "location 'local': the name 'local' is the built-in",
        ),
        ('[[locations]]\nname = "a"\nkind = "ftp"\n', "location 'a': kind must be one of folder, s3"),
        ('[[locations]]\nname = "a"\nkind = "folder"\npath = "x"\ncolour = 1\n', "location 'a': unknown key 'colour'"),
        ('[[locations]]\nname = "a"\nkind = "folder"\n', "location 'a': a folder location needs a path"),
        (
            '[[locations]]\nname = "a"\nkind = "folder"\npath = "x"\n[[locations]]\nname = "a"\nkind = "folder"\npath = "y"\n',
            "location 'a': the name is used twice",
        ),
        ('[[locations]]\nname = "a"\nkind = "folder"\npath = "data/keep"\n', "location 'a' ("),
        (
            '[[locations]]\nname = "a"\nkind = "folder"\npath = "data/local-copies"\n',
            "is the same folder as the local copies folder",
        ),
        ('[[locations]]\nname = "a"\nkind = "folder"\npath = "site/copies"\n', "is inside source 'site'"),
        ('[[locations]]\nname = "a"\nkind = "folder"\npath = "."\n', "contains"),
        (S3.replace('"https://s3.example.net:9000/"', '"s3.example.net"'), "location 'offsite': endpoint must be"),
        (S3.replace('"backups-bucket"', '"a/b"'), "location 'offsite': bucket must be"),
        (S3.replace("path_style = false", 'path_style = "no"'), "path_style must be true or false"),
        (S3.replace('secret_access_key_env = "TEST_SECRET"\n', ""), "secret_access_key_env must name"),
        (
            S3.replace('"TEST_SECRET"', '"UNSET_VARIABLE"'),
            "the environment variable UNSET_VARIABLE (secret_access_key_env) is not set",
        ),
        (
            S3 + 'credentials_file = "c.toml"\n',
            "give the credentials as access_key_id_env and secret_access_key_env, or as",
        ),
        (
            S3.replace(
                'access_key_id_env = "TEST_KEY_ID"\nsecret_access_key_env = "TEST_SECRET"\n',
                'credentials_file = "none.toml"\n',
            ),
            "credentials_file",
        ),
        (S3 + "keepLast = 0\n", "location 'offsite': keepLast must be a whole number from 1 to 100000 (got 0)"),
        (S3 + "keepLast = -3\n", "location 'offsite': keepLast must be a whole number from 1 to 100000 (got -3)"),
        (S3 + 'keepLast = "5"\n', "location 'offsite': keepLast must be a whole number"),
        (S3 + "keepLast = 2.5\n", "location 'offsite': keepLast must be a whole number"),
        (S3 + "keepLast = true\n", "location 'offsite': keepLast must be a whole number"),
        ('[[locations]]\nname = "a"\nkind = "folder"\npath = "x"\nkeepLast = 0\n', "location 'a': keepLast must be"),
    ],
)
def test_bad_location_is_one_line_naming_file_location_problem(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "data" / "keep").mkdir(parents=True)
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    message = str(caught.value)
    assert message.startswith(f"config file {tmp_path / 'backups.toml'}: ") and problem in message, message
    assert "\n" not in message and "very-secret-value" not in message and "AKIDEXAMPLE" not in message


def test_locations_must_be_tables(tmp_path: Path) -> None:
    path = tmp_path / "backups.toml"
    path.write_text("locations = 3\n" + SOURCES)
    with pytest.raises(ConfigError, match=r"backups.toml: locations must be \[\[locations\]\] tables$"):
        load_config_file(path)


def test_a_damaged_credentials_file_is_not_quoted(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('access_key_id = "id"\nsecret_access_key = "s3cr3t-leak\n')
    text = S3.replace(
        'access_key_id_env = "TEST_KEY_ID"\nsecret_access_key_env = "TEST_SECRET"\n', 'credentials_file = "c.toml"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    assert "not valid TOML" in str(caught.value) and "s3cr3t" not in str(caught.value)


def test_s3_encrypts_by_default_folders_do_not(tmp_path: Path) -> None:
    folder = f'\n[[locations]]\nname = "usb"\nkind = "folder"\npath = "{tmp_path / "usb"}"\n'
    s3, usb = load(tmp_path, S3 + folder)
    assert s3.encrypt is True and usb.encrypt is False
    s3, usb = load(tmp_path, S3 + "encrypt = false\n" + folder + "encrypt = true\n")
    assert s3.encrypt is False and usb.encrypt is True
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, S3 + 'encrypt = "yes"\n')
    assert str(caught.value).endswith("location 'offsite': encrypt must be true or false")
