"""A real Azurite Blob server for tests: free port, temporary --location, stopped by PID."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
AZURITE_BLOB = PROJECT_ROOT / ".cache" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
HADOOP_AZURE_JARS = PROJECT_ROOT / ".cache" / "jars" / "hadoop-azure"
ACCOUNT = "devstoreaccount1"
# Azurite's public, documented default account key: opens nothing but a local emulator.
EMULATOR_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
EMULATOR_HOST = f"{ACCOUNT}.blob.localhost"
# A well-formed account key that is not the emulator's.
WRONG_KEY = "d3Jvbmcga2V5IGZvciB0aGUgZW11bGF0b3IgYWNjb3VudCwgdXNlZCBieSBhIHRlc3Q="


def require(path: Path, how: str) -> None:
    """Skip when a set-up artefact is missing locally; fail in CI, where set-up must have run."""
    if path.exists():
        return
    message = f"{path} is missing: run `{how}`"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def connection_string(port: int, key: str = EMULATOR_KEY) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={key};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
    )


@dataclass
class Azurite:
    port: int
    location: Path
    process: subprocess.Popen

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def connection_string(self) -> str:
        return connection_string(self.port)

    @classmethod
    def start(cls, location: Path, timeout: float = 30.0) -> Azurite:
        require(AZURITE_BLOB, "bash scripts/azurite.sh install")
        location.mkdir(parents=True, exist_ok=True)
        port = free_port()
        log = (location / "azurite.log").open("wb")
        process = subprocess.Popen(
            [str(AZURITE_BLOB), "--blobHost", "127.0.0.1", "--blobPort", str(port),
             "--location", str(location), "--skipApiVersionCheck", "--loose", "--disableTelemetry"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        server = cls(port, location, process)
        server._wait_until_listening(timeout)
        return server

    def _wait_until_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Azurite exited at start-up: {self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Azurite not listening on {self.port} after {timeout} s: {self.log_tail()}")

    def log_tail(self) -> str:
        log = self.location / "azurite.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""

    def stop(self) -> None:
        """Terminate this server's own process (by PID), then kill it if it lingers."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
