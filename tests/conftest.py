"""Fixtures the whole suite shares. Tests are grouped by the package they test (tests/store, tests/sim,
tests/training, ...); the helpers beside this file are importable from every folder because pytest puts
this folder on sys.path for its conftest.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from services import s3_server
from steps_helpers import torch_threads


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Small networks train as fast on one thread, and deterministically: every test module that trains
    asks for it (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``)."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def s3_service() -> Iterator[dict[str, str]]:
    """One S3-compatible server for the whole session (each test module uses its own key prefixes)."""
    with s3_server() as env:
        yield env


@pytest.fixture(scope="module")
def s3(s3_service: dict[str, str]) -> Iterator[dict[str, str]]:
    """The S3 server's AWS_* variables set for one module."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in s3_service.items():
            patch.setenv(name, value)
        yield s3_service
