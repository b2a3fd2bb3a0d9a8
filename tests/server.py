"""Running the real `handoff` commands and server in processes of their own, for the tests
that must see what an operator sees: ports, worker processes, signals, exit codes."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

STARTUP_SECONDS = 90  # two workers importing the app on a busy 2-core machine
STOP_SECONDS = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def script(name: str = "handoff", bin_dir: Path | None = None) -> str:
    return str((bin_dir or Path(sys.executable).parent) / name)


def clean_env(**values: str) -> dict[str, str]:
    """This process's environment without any HANDOFF_* or metrics setting, plus `values`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("HANDOFF_") and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    env.update(values)
    return env


def run(args: list[str], env: dict[str, str], cwd: Path | None = None) -> str:
    """Run a command to its end; fail with its output unless it exits 0."""
    done = subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


class Server:
    """A server process started with `args`, waited for on /healthz, stopped with SIGTERM."""

    def __init__(
        self,
        args: list[str],
        env: dict[str, str],
        port: int,
        log_dir: Path,
        cwd: Path | None = None,
    ) -> None:
        self.base_url = f"http://127.0.0.1:{port}"
        self.stdout_path = log_dir / "server.stdout"
        self.stderr_path = log_dir / "server.stderr"
        self._stdout = self.stdout_path.open("w")
        self._stderr = self.stderr_path.open("w")
        self.process = subprocess.Popen(
            args,
            env=env,
            cwd=cwd,
            stdout=self._stdout,
            stderr=self._stderr,
            start_new_session=True,  # its own process group, so a failed test can end it all
        )
        self.returncode: int | None = None

    def wait_until_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited {self.process.returncode}:\n{self.logs()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise AssertionError(f"server not healthy after {STARTUP_SECONDS}s:\n{self.logs()}")

    def stop(self) -> int:
        """SIGTERM, as a supervisor or `docker stop` sends it; the exit code.

        With one worker uvicorn ends by re-raising the signal (exit status -SIGTERM, 143 in a
        shell), as a process stopped by a signal should; with several, the parent exits 0."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
                raise AssertionError(f"server ignored SIGTERM:\n{self.logs()}") from None
        self._stdout.close()
        self._stderr.close()
        self.returncode = self.process.returncode
        return self.returncode

    def kill_leftovers(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def logs(self) -> str:
        return self.stderr_path.read_text() + self.stdout_path.read_text()

    def log_records(self) -> list[dict[str, Any]]:
        """Every line the server wrote, each parsed as the JSON object it must be."""
        lines = [line for line in self.logs().splitlines() if line.strip()]
        return [json.loads(line) for line in lines]


CLEAN_STOP = (0, -signal.SIGTERM)


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
