"""A real Spark standalone cluster on 127.0.0.1 (scripts/standalone_cluster.sh), and `kedro run`
against it in a subprocess: the test session's own local SparkContext cannot share a process with a
second SparkContext."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = PROJECT_ROOT / "scripts" / "standalone_cluster.sh"


def _environment() -> dict[str, str]:
    return {
        **os.environ,
        "KEDRO_DISABLE_TELEMETRY": "true",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "PYTHON": sys.executable,
    }


@dataclass
class StandaloneCluster:
    state_dir: Path
    master_url: str

    @classmethod
    def start(cls, state_dir: Path) -> StandaloneCluster:
        result = subprocess.run(
            ["bash", str(SCRIPT), "start", str(state_dir)],
            capture_output=True, text=True, timeout=180, env=_environment(), check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"standalone cluster did not start:\n{result.stdout}\n{result.stderr}")
        return cls(state_dir, (state_dir / "master_url").read_text().strip())

    def daemon_pids(self) -> list[int]:
        return [int(path.read_text()) for path in sorted(self.state_dir.glob("*.pid"))]

    def stop(self) -> None:
        subprocess.run(["bash", str(SCRIPT), "stop", str(self.state_dir)], timeout=120, env=_environment(), check=True)

    def processes_left(self, pids: list[int]) -> dict[int, str]:
        """Processes of this cluster still alive: its daemons, or anything running in its directory
        (executors and their Python workers run in the workers' work dirs)."""
        left = {}
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                cwd = os.readlink(proc / "cwd")
            except OSError:
                continue  # gone meanwhile, or not ours to inspect
            if int(proc.name) in pids or cwd.startswith(str(self.state_dir)) or str(self.state_dir) in command:
                left[int(proc.name)] = command[:200]
        return left

    def executor_logs(self) -> dict[str, list[Path]]:
        """Executor stderr files per worker: an executor ran there for an application."""
        return {
            worker.name: sorted(worker.glob("app-*/*/stderr"))
            for worker in sorted(self.state_dir.glob("worker*"))
            if worker.is_dir()
        }


def kedro_run(project: Path, cluster: StandaloneCluster, pipeline: str, **params: str) -> subprocess.CompletedProcess:
    """`python -m kedro run --env=standalone` in ``project`` against ``cluster``; never raises on failure."""
    values = ",".join(f"{key}={value}" for key, value in {"spark_master": cluster.master_url, **params}.items())
    command = [sys.executable, "-m", "kedro", "run", "--env=standalone", f"--pipelines={pipeline}", f"--params={values}"]
    return subprocess.run(
        command, cwd=project, capture_output=True, text=True, timeout=900, env=_environment(), check=False
    )
