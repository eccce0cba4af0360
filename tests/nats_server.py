"""A private nats-server with JetStream for one test: its own random port (``-p -1``,
read back from the ports file) and its own store directory, so tests never share
streams or consumers with each other or with the machine's broker."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest


def nats_server_binary() -> str:
    """The nats-server executable, or a failure under CI=true / a skip outside it."""
    found = os.environ.get("PERPARB_NATS_SERVER") or shutil.which("nats-server") or (
        "/usr/sbin/nats-server" if os.access("/usr/sbin/nats-server", os.X_OK) else None)
    if found:
        return found
    why = "nats-server is not installed (apt-get install nats-server, or set PERPARB_NATS_SERVER)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{why}; NATS bus tests cannot run under CI")
    pytest.skip(f"{why}; NATS bus tests skipped outside CI")


class NatsServer:
    def __init__(self, root: Path) -> None:
        self.binary = nats_server_binary()
        self.root = root
        self.port = -1
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        ports = self.root / f"ports-{time.monotonic_ns()}"
        ports.mkdir(parents=True)
        log = open(self.root / "server.log", "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [self.binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.root / "store"),
             "--ports_file_dir", str(ports)], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            files = list(ports.glob("*.ports"))
            if files:
                try:
                    url = json.loads(files[0].read_text())["nats"][0]
                except (ValueError, KeyError, IndexError):
                    url = ""
                if url:
                    self.port = int(url.rsplit(":", 1)[1])
                    return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nats-server did not start; log: {(self.root / 'server.log').read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
