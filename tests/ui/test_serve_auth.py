"""`serve` against a Prefect server that others could reach, protected by basic auth.

Prefect 3.9: the server takes PREFECT_SERVER_API_AUTH_STRING and refuses API calls without
it; `serve`, workers and the CLI send PREFECT_API_AUTH_STRING. A real `prefect server start`
with auth on, `product-images serve` with the string, and an upload made into a product; a
client without the string is refused, and so is `serve` without it.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from product_images.store import S3Store
from product_images.testing.seaweedfs import SeaweedServer, free_ports
from tests.support.polling import wait_until
from tests.ui.conftest import HOST, Process, clean_env

pytestmark = [pytest.mark.s3]

USER, PASSWORD = "admin", "a-long-random-password"
AUTH = f"{USER}:{PASSWORD}"


@pytest.fixture
def locked_server(tmp_path: Path) -> Iterator[str]:
    """`prefect server start` with basic auth on; yields its API URL."""
    (port,) = free_ports(1)
    api = f"http://{HOST}:{port}/api"
    env = clean_env(
        PREFECT_HOME=str(tmp_path / "server-home"),
        PREFECT_SERVER_UI_API_URL=api,
        PREFECT_SERVER_API_AUTH_STRING=AUTH,
    )
    prefect = str(Path(sys.executable).parent / "prefect")
    process = Process(
        "prefect server",
        [prefect, "server", "start", "--host", HOST, "--port", str(port)],
        env,
        tmp_path / "server.log",
        tmp_path / "server-kept.log",
    )
    with httpx.Client(base_url=api, auth=(USER, PASSWORD), timeout=5) as http:
        try:
            process.wait_for("/api/health", lambda: http.get("/health").is_success, timeout=90)
            yield api
        finally:
            process.stop()


def _serve(api: str, tmp_path: Path, store: str, seaweed: SeaweedServer, **extra: str) -> Process:
    env = clean_env(
        **seaweed.env(),
        PREFECT_API_URL=api,
        PREFECT_HOME=str(tmp_path / "serve-home"),
        PRODUCT_IMAGES_STORE=store,
        PRODUCT_IMAGES_BACKEND="local",
        PRODUCT_IMAGES_PLATFORMS='["amazon"]',
        **extra,
    )
    program = shutil.which("product-images", path=str(Path(sys.executable).parent))
    assert program, "no product-images script next to this Python: pip install -e ."
    name = "serve-" + ("auth" if extra else "anonymous")
    return Process(name, [program, "serve"], env, tmp_path / f"{name}.log", tmp_path / "kept.log")


def test_serve_works_against_a_server_with_auth_and_strangers_are_refused(
    locked_server: str,
    seaweed: SeaweedServer,
    s3_store: S3Store,
    photo: Path,
    tmp_path: Path,
) -> None:
    refused = httpx.post(f"{locked_server}/deployments/filter", json={}, timeout=10)
    assert refused.status_code == 401

    anonymous = _serve(locked_server, tmp_path, f"s3://{s3_store.bucket}/out", seaweed)
    try:
        assert anonymous.proc.wait(timeout=120) != 0  # cannot register anything
    finally:
        anonymous.stop()
    assert "401" in anonymous.tail(20_000), anonymous.tail()

    served = _serve(
        locked_server,
        tmp_path,
        f"s3://{s3_store.bucket}/out",
        seaweed,
        PREFECT_API_AUTH_STRING=AUTH,
    )
    try:
        s3_store.put("out/incoming/AUTH-1.jpg", photo.read_bytes(), "image/jpeg")
        wait_until(
            lambda: s3_store.exists("out/AUTH-1/manifest.json"),
            timeout=120,
            describe=lambda: f"no manifest; serve log:\n{served.tail()}",
            alive=served.alive,
        )
    finally:
        served.stop()
    with httpx.Client(base_url=locked_server, auth=(USER, PASSWORD), timeout=10) as http:
        runs = http.post("/flow_runs/filter", json={}).raise_for_status().json()
    assert [run["name"] for run in runs] == ["product-AUTH-1"]
    assert runs[0]["state"]["type"] == "COMPLETED"
