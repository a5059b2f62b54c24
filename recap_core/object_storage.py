"""Credentials and endpoint for tables and checkpoints on object storage, from the AWS_* variables.

Lance and Delta talk to S3 (or any S3-compatible server: MinIO, Ceph, a test server) through their
own Rust object stores; both take the same settings under different option names. Local paths get no
options, so every call site can pass ``*_storage_options(uri)`` unconditionally.
"""

from __future__ import annotations

import os

import pyarrow.fs

_FROM_ENVIRONMENT = {
    # environment variable -> Lance option
    "AWS_ACCESS_KEY_ID": "aws_access_key_id",
    "AWS_SECRET_ACCESS_KEY": "aws_secret_access_key",
    "AWS_SESSION_TOKEN": "aws_session_token",
    "AWS_REGION": "aws_region",
    "AWS_ENDPOINT_URL": "aws_endpoint",
}


def is_object_store(uri: str) -> bool:
    return "://" in str(uri) and not str(uri).startswith("file://")


def _settings() -> dict[str, str]:
    settings = {name: os.environ[name] for name in _FROM_ENVIRONMENT if os.environ.get(name)}
    if "AWS_REGION" not in settings and os.environ.get("AWS_DEFAULT_REGION"):
        settings["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"]
    return settings


def lance_storage_options(uri: str) -> dict[str, str] | None:
    if not is_object_store(uri):
        return None
    settings = _settings()
    options = {_FROM_ENVIRONMENT[name]: value for name, value in settings.items()}
    if settings.get("AWS_ENDPOINT_URL", "").startswith("http://"):
        options["allow_http"] = "true"
    return options


def delta_storage_options(uri: str) -> dict[str, str] | None:
    """Delta commits a version by a conditional put (If-None-Match on the log entry), so concurrent
    writers on S3 need no locking service: the loser gets a commit conflict and retries."""
    if not is_object_store(uri):
        return None
    options = dict(_settings())
    if options.get("AWS_ENDPOINT_URL", "").startswith("http://"):
        options["AWS_ALLOW_HTTP"] = "true"
    options["conditional_put"] = "etag"
    return options


def arrow_filesystem(uri: str) -> tuple[pyarrow.fs.FileSystem, str]:
    """A pyarrow filesystem for plain files (checkpoints) under ``uri``, and the path inside it."""
    if not is_object_store(uri):
        return pyarrow.fs.LocalFileSystem(), str(uri)
    scheme, _, path = str(uri).partition("://")
    if scheme != "s3":
        return pyarrow.fs.FileSystem.from_uri(uri)
    settings = _settings()
    endpoint = settings.get("AWS_ENDPOINT_URL", "")
    filesystem = pyarrow.fs.S3FileSystem(
        access_key=settings.get("AWS_ACCESS_KEY_ID"),
        secret_key=settings.get("AWS_SECRET_ACCESS_KEY"),
        session_token=settings.get("AWS_SESSION_TOKEN"),
        region=settings.get("AWS_REGION"),
        endpoint_override=endpoint.partition("://")[2] or None,
        scheme="http" if endpoint.startswith("http://") else "https",
    )
    return filesystem, path.rstrip("/")
