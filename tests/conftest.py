import functools
import http.server
import socket
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Every test writes to a temporary output and cache, and can never reach the internet."""
    monkeypatch.setenv("MNISTLAB_OUTPUT", str(tmp_path / "out"))
    monkeypatch.setenv("MNISTLAB_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("MNISTLAB_MIRROR", f"http://127.0.0.1:{closed_port()}/")
    monkeypatch.setenv("MNISTLAB_IDX_MIRROR", f"http://127.0.0.1:{closed_port()}/")
    monkeypatch.setenv("MNISTLAB_NO_PROGRESS", "1")
    return tmp_path


@pytest.fixture
def http_server(tmp_path):
    """Serve a fresh directory on 127.0.0.1; yields (directory, base_url)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
