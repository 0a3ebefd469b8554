"""The plain-socket bench reader against a loopback server that answers in one write, so the reader's first read
takes head and body together, as it does from nginx when the reading thread runs late."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from bench.readers import _socket_get

BODY = bytes(range(256)) * 8  # 2 KiB
HEAD = f"HTTP/1.1 200 OK\r\nContent-Length: {len(BODY)}\r\nConnection: close\r\n\r\n".encode()


@pytest.fixture
def one_write_server() -> Iterator[str]:
    """Answers one request with head and body in one `sendall`: on loopback, one segment the reader gets whole."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            while not conn.recv(4096).endswith(b"\r\n\r\n"):
                pass
            conn.sendall(HEAD + BODY)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/file"
    thread.join(timeout=5)
    listener.close()


def test_a_first_read_that_fills_the_buffer_with_head_and_body_counts_the_body(one_write_server: str) -> None:
    # The buffer is smaller than the answer: the first read fills it, head and the body's start.
    assert _socket_get(one_write_server, {}, buffer_size=len(HEAD) + 100) == len(BODY)


def test_a_head_longer_than_the_buffer_is_refused_by_name(one_write_server: str) -> None:
    with pytest.raises(AssertionError, match="no HTTP response head in the whole buffer"):
        _socket_get(one_write_server, {}, buffer_size=len(HEAD) - 10)
