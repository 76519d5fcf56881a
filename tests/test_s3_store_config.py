"""MODELREG_ARTIFACTS=s3://… plus the AWS variables: what is accepted, and what each mistake says."""

from __future__ import annotations

import pytest

from modelreg.daemon.artifacts.s3 import parse_s3_config
from modelreg.shared.errors import InvalidInput

CREDS = {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s3cret"}


def test_bucket_prefix_endpoint_region_and_credentials():
    env = {**CREDS, "AWS_ENDPOINT_URL": "http://other:1", "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:8333/",
           "AWS_REGION": "eu-west-1", "AWS_SESSION_TOKEN": "tok"}
    c = parse_s3_config("s3://team-models/registry/prod/", env)
    assert (c.bucket, c.prefix, c.endpoint_url, c.region) == ("team-models", "registry/prod", "http://127.0.0.1:8333",
                                                              "eu-west-1")
    assert (c.access_key_id, c.secret_access_key, c.session_token) == ("AKID", "s3cret", "tok")
    assert "s3cret" not in repr(c) and "tok" not in repr(c)


def test_defaults_aws_itself_the_bucket_root_and_us_east_1():
    c = parse_s3_config("s3://models", CREDS)
    assert (c.prefix, c.endpoint_url, c.region) == ("", None, "us-east-1")
    assert parse_s3_config("s3://models", {**CREDS, "AWS_ENDPOINT_URL": "https://s3.example:9000"}).endpoint_url \
        == "https://s3.example:9000"
    assert parse_s3_config("s3://models", {**CREDS, "AWS_DEFAULT_REGION": "ap-south-1"}).region == "ap-south-1"


@pytest.mark.parametrize("url, env, message", [
    ("/var/blobs", CREDS, "s3://BUCKET/PREFIX"),
    ("https://bucket/prefix", CREDS, "s3://BUCKET/PREFIX"),
    ("s3://", CREDS, "not an S3 bucket name"),
    ("s3://Bad_Bucket/p", CREDS, "not an S3 bucket name"),
    ("s3://ab/p", CREDS, "not an S3 bucket name"),
    ("s3://bucket/p?versioning=1", CREDS, "only s3://BUCKET/PREFIX"),
    ("s3://key:secret@bucket/p", CREDS, "credentials come from"),
    ("s3://bucket/a/../b", CREDS, "'..'"),
    ("s3://bucket/p", {}, "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
    ("s3://bucket/p", {"AWS_ACCESS_KEY_ID": "AKID"}, "set AWS_SECRET_ACCESS_KEY"),
    ("s3://bucket/p", {**CREDS, "AWS_ENDPOINT_URL_S3": "127.0.0.1:8333"}, "expected http(s)://HOST[:PORT]"),
    ("s3://bucket/p", {**CREDS, "AWS_ENDPOINT_URL_S3": "http://host/path"}, "expected http(s)://HOST[:PORT]"),
])
def test_mistakes_say_what_is_wrong(url, env, message):
    with pytest.raises(InvalidInput) as caught:
        parse_s3_config(url, env)
    assert message in caught.value.message
