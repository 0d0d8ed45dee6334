"""The shared S3 helper: URI parsing and bounded reads (moto)."""

from __future__ import annotations

import boto3
import pytest

from offergrid_integration.s3 import S3ReadError, parse_s3_uri, read_s3_object


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://bucket/key.json", ("bucket", "key.json")),
        ("s3://bucket/dir/sub/key.csv", ("bucket", "dir/sub/key.csv")),
        ("  s3://bucket/key  ", ("bucket", "key")),
    ],
)
def test_parse_s3_uri(uri: str, expected: tuple[str, str]) -> None:
    assert parse_s3_uri(uri) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "https://bucket/key",
        "s3://bucket",
        "s3://bucket/",
        "s3:///key",
        "s3://bucket/key?v=1",
        "s3://b/k#x",
        "",
    ],
)
def test_parse_s3_uri_refuses_what_is_not_a_bucket_and_key(uri: str) -> None:
    # The message names the rule (both former wordings), never the value
    with pytest.raises(ValueError, match=r"S3 URI: s3://bucket/key$"):
        parse_s3_uri(uri)


@pytest.fixture
def bucket(aws: None) -> str:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="docs", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket="docs", Key="rules/coverage.json", Body=b'{"version": 1}')
    return "docs"


def test_read_s3_object_returns_the_bytes(bucket: str) -> None:
    assert read_s3_object(f"s3://{bucket}/rules/coverage.json") == b'{"version": 1}'
    assert read_s3_object(f"s3://{bucket}/rules/coverage.json", boto3.client("s3")) == b'{"version": 1}'


@pytest.mark.parametrize(
    ("uri", "code"), [("s3://docs/absent.json", "NoSuchKey"), ("s3://no-bucket/k", "NoSuchBucket")]
)
def test_read_s3_object_names_the_error_code(bucket: str, uri: str, code: str) -> None:
    with pytest.raises(S3ReadError, match=f"cannot read {uri}: {code}") as caught:
        read_s3_object(uri)
    assert (caught.value.uri, caught.value.problem) == (uri, code)


def test_read_s3_object_refuses_an_object_over_the_limit(bucket: str) -> None:
    with pytest.raises(S3ReadError, match="14 bytes, over the 10 byte limit"):
        read_s3_object(f"s3://{bucket}/rules/coverage.json", max_bytes=10)
    assert read_s3_object(f"s3://{bucket}/rules/coverage.json", max_bytes=14) == b'{"version": 1}'
