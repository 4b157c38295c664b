"""UI test fixtures: a real `prefect server start` and `product-images serve` against it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from product_images.testing.seaweedfs import SeaweedServer, free_ports

HOST = "127.0.0.1"
#: Screenshots and server logs of the last UI test run (git-ignored; CI can keep them).
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
#: Variables of the test process that must not leak into the servers we start.
_FOREIGN = ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_PROFILE", "GEMINI_API_KEY")
_FOREIGN_PREFIXES = ("PRODUCT_IMAGES_", "OPENAI_", "PREFECT_SERVER_", "PREFECT_UI_")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test item (rep_call...) for fixtures to look at."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without Prefect/pipeline settings, plus `extra`."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in _FOREIGN and not name.startswith(_FOREIGN_PREFIXES)
    }
    return env | {"PREFECT_SERVER_ANALYTICS_ENABLED": "false"} | extra


class Process:
    """A subprocess whose combined output goes to a log file, stopped with SIGTERM."""

    def __init__(
        self, name: str, args: list[str], env: dict[str, str], log: Path, keep: Path
    ) -> None:
        self.name = name
        self.log = log
        self.keep = keep  # where the log is copied when the process stops
        self._handle = log.open("ab")
        self.proc = subprocess.Popen(
            args,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its flow-run children get the SIGTERM too
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, size: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_bytes()[-size:].decode("utf-8", "replace")
        return ""

    def wait_for(self, what: str, ready: Callable[[], bool], timeout: float) -> float:
        """Poll `ready` until true; returns the seconds it took, or fails with the log tail."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if not self.alive():
                pytest.fail(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if ready():
                    return time.monotonic() - start
            time.sleep(0.25)
        pytest.fail(f"{self.name}: {what} not within {timeout:g}s; log tail:\n{self.tail()}")

    def stop(self, timeout: float = 15) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._handle.close()
        with contextlib.suppress(OSError):
            shutil.copyfile(self.log, self.keep)


class PrefectServer:
    """A running `prefect server start` and a small client for its REST API."""

    def __init__(self, process: Process, port: int) -> None:
        self.process = process
        self.url = f"http://{HOST}:{port}"
        self.api_url = f"{self.url}/api"
        self.http = httpx.Client(base_url=self.api_url, timeout=10)

    def deployment(self, name: str) -> dict[str, Any] | None:
        """The deployment called `name` (any flow), or None."""
        body = {"deployments": {"name": {"any_": [name]}}, "limit": 1}
        found = self.http.post("/deployments/filter", json=body).raise_for_status().json()
        return found[0] if found else None

    def flow_run(self, run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.http.get(f"/flow_runs/{run_id}").raise_for_status().json()
        return result

    def wait_for_flow_run(self, run_id: str, timeout: float) -> dict[str, Any]:
        """Poll until the run reaches a final state; returns the run."""
        deadline = time.monotonic() + timeout
        run = self.flow_run(run_id)
        while time.monotonic() < deadline:
            run = self.flow_run(run_id)
            if run["state"] and run["state"]["type"] in _FINAL_STATES:
                return run
            time.sleep(0.5)
        state = run["state"] and run["state"]["name"]
        pytest.fail(f"flow run {run_id} still {state} after {timeout:g}s")


_FINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@pytest.fixture(scope="module")
def ui_artifacts() -> Path:
    """test-artifacts/ui/, emptied: this run's screenshots and logs only."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def prefect_server(
    tmp_path_factory: pytest.TempPathFactory, ui_artifacts: Path
) -> Iterator[PrefectServer]:
    """`prefect server start` on a free port with its own PREFECT_HOME (~8-15 s to healthy)."""
    home = tmp_path_factory.mktemp("prefect-home")
    (port,) = free_ports(1)
    env = clean_env(
        PREFECT_HOME=str(home),
        # Without this the UI talks to the default port 4200, not ours.
        PREFECT_SERVER_UI_API_URL=f"http://{HOST}:{port}/api",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_LOG_RETRYABLE_ERRORS="true",  # log why a request got a 503
    )
    prefect = str(Path(sys.executable).parent / "prefect")
    process = Process(
        "prefect server",
        [prefect, "server", "start", "--host", HOST, "--port", str(port)],
        env,
        home / "server.log",
        ui_artifacts / "prefect-server.log",
    )
    server = PrefectServer(process, port)
    try:
        process.wait_for(
            "/api/health",
            lambda: server.http.get("/health", timeout=2).json() is True,
            timeout=90,
        )
        yield server
    finally:
        server.http.close()
        process.stop()


@pytest.fixture
def served(
    prefect_server: PrefectServer,
    s3_env: SeaweedServer,
    s3_store: Any,
    tmp_path: Path,
    ui_artifacts: Path,
) -> Iterator[dict[str, Any]]:
    """`product-images serve` against `prefect_server`, storing into s3://<bucket>/out.

    Yields the `process-product` deployment once the server lists it as READY.
    """
    env = clean_env(
        **s3_env.env(),
        PREFECT_API_URL=prefect_server.api_url,
        PREFECT_HOME=str(tmp_path / "serve-home"),
        PREFECT_RUNNER_POLL_FREQUENCY="1",
        PRODUCT_IMAGES_STORE=f"s3://{s3_store.bucket}/out",
        PRODUCT_IMAGES_BACKEND="local",  # offline, whatever keys the machine has
    )
    program = shutil.which("product-images", path=str(Path(sys.executable).parent))
    assert program, "no product-images script next to this Python: pip install -e ."
    process = Process(
        "product-images serve",
        [program, "serve"],
        env,
        tmp_path / "serve.log",
        ui_artifacts / "serve.log",
    )
    found: dict[str, Any] = {}

    def ready() -> bool:
        deployment = prefect_server.deployment("process-product")
        if deployment and deployment.get("status") == "READY":
            found.update(deployment)
            return True
        return False

    try:
        process.wait_for("the process-product deployment", ready, timeout=60)
        yield found
    finally:
        process.stop()
