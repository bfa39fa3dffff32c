"""JOBCHAT_STORAGE_URL and JOBCHAT_S3_ENDPOINT_URL: a bad value stops start-up with one line
saying what is expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobchat.config import Settings
from jobchat.files.location import LocalLocation, S3Location, parse_storage_url
from tests.test_settings import problem


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("JOBCHAT_STORAGE_URL", "/var/lib/jobchat", "file://./folder"),
        ("JOBCHAT_STORAGE_URL", "ftp://files.example.com/x", "s3://bucket/prefix"),
        ("JOBCHAT_STORAGE_URL", "file://files.example.com/x", "file:///absolute"),
        ("JOBCHAT_STORAGE_URL", "file://./", "name a folder"),
        ("JOBCHAT_STORAGE_URL", "s3://My_Bucket/x", "bucket name"),
        ("JOBCHAT_STORAGE_URL", "s3:///prefix", "bucket name"),
        ("JOBCHAT_S3_ENDPOINT_URL", "minio:9000", "http:// or https:// URL"),
    ],
)
def test_a_bad_storage_setting_is_one_line(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    line = problem(monkeypatch, variable, value)
    assert variable in line and says in line, line
    assert "\n" not in line


def test_the_storage_urls_that_are_taken() -> None:
    assert parse_storage_url("file://./jobchat-files") == LocalLocation(Path("./jobchat-files"))
    assert parse_storage_url("file:///var/lib/jobchat") == LocalLocation(Path("/var/lib/jobchat"))
    assert parse_storage_url("s3://hiring-files") == S3Location("hiring-files", "")
    assert parse_storage_url("s3://hiring-files/prod/eu/") == S3Location("hiring-files", "prod/eu/")
    assert Settings(_env_file=None).storage_url == "file://./jobchat-files"
    blank = Settings(_env_file=None, s3_endpoint_url="")
    assert blank.s3_endpoint_url is None
