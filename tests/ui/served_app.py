"""The dashboard served by ``streamlit run`` for the tests that talk to a real server (the
browser tests, the listening-address test): a free loopback port, the server started,
its health endpoint awaited, and the process stopped afterwards."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import pytest

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def streamlit_app(args: Sequence[str], *, port: int, env: Mapping[str, str], log_path: Path,
                  timeout: float = 60.0) -> Iterator[str]:
    """``python -m streamlit run <args> --server.port <port>`` from the checkout, its output
    in ``log_path``; yields ``http://127.0.0.1:<port>`` once ``/_stcore/health`` answers 200.
    Fails the test (with the log's tail) when the server exits or is not up in ``timeout``
    seconds; the server is terminated (killed after 10 s) on the way out."""
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", *args, "--server.port", str(port)],
                                cwd=REPO, env=dict(env), stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                        if reply.status == 200:
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"streamlit did not start: {Path(log_path).read_text()[-2000:]}")
                time.sleep(0.5)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
