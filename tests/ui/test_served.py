"""How the dashboard is served: ``streamlit run dashboard/app.py`` with the shipped
``.streamlit/config.toml`` (no address on the command line) listens on 127.0.0.1 only.

The listening sockets are read from the kernel's tables (``/proc/net/tcp`` and
``/proc/net/tcp6``), not from what Streamlit says it does.
"""
from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import pytest
from served_app import free_port, streamlit_app

REPO = Path(__file__).resolve().parents[2]
TCP_LISTEN = "0A"  # the state column of /proc/net/tcp*


def _address(hex_ip: str) -> str:
    """``/proc/net/tcp*``'s hex address (32-bit words in host order) as text."""
    raw = bytes.fromhex(hex_ip)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket in LISTEN state on ``port`` (IPv4 and IPv6)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            hex_ip, hex_port = local.split(":")
            if state == TCP_LISTEN and int(hex_port, 16) == port:
                found.add(_address(hex_ip))
    return found


def test_proc_table_parsing_reads_this_processes_listener() -> None:
    """The parser itself, on a socket of this test bound to loopback."""
    if not Path("/proc/net/tcp").is_file():
        pytest.skip("no /proc/net/tcp (not Linux)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert listening_addresses(port) == {"127.0.0.1"}
    assert listening_addresses(port) == set()


def test_shipped_config_listens_on_loopback_only(tmp_path: Path) -> None:
    if not Path("/proc/net/tcp").is_file():
        pytest.skip("no /proc/net/tcp (not Linux)")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    env.update({"AVE_RUNS": str(tmp_path / "runs"), "AVE_BUNDLE": str(tmp_path / "bundle"),
                "AVE_DATA": str(tmp_path / "data")})
    log = tmp_path / "streamlit.log"
    # exactly as docs/dashboard.md says, plus a free port: no --server.address
    with streamlit_app(["dashboard/app.py"], port=port, env=env, log_path=log):
        assert listening_addresses(port) == {"127.0.0.1"}, log.read_text()[-2000:]
