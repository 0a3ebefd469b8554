"""The local store's direct path over HTTP: the standard library's static file server on the store's directory,
taught byte ranges (GET with `Range`).

The issue compares each figure with "the same object read straight from the store with the same client". An S3
store is an HTTP server, so there the client reads it directly. A local directory has no HTTP of its own; this
server gives it the plainest one, so the local figures compare like with like: callrec's HTTP path against a bare
HTTP file server, both read by the same httpx client over loopback.

    python -m bench.fileserver DIRECTORY PORT
"""

from __future__ import annotations

import os
import re
import sys
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CHUNK = 1 << 20
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


class Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the API serves

    def do_GET(self) -> None:
        wanted = _RANGE.match(self.headers.get("Range", ""))
        if wanted is None:
            super().do_GET()
            return
        path = Path(self.translate_path(self.path))
        try:
            f = path.open("rb")
        except OSError:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        with f:
            size = os.fstat(f.fileno()).st_size
            start = int(wanted[1])
            end = min(int(wanted[2]) if wanted[2] else size - 1, size - 1)
            if start > end:
                self.send_error(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                return
            self.send_response(HTTPStatus.PARTIAL_CONTENT)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.send_header("Content-Length", str(end - start + 1))
            self.end_headers()
            f.seek(start)
            left = end - start + 1
            while left > 0 and (data := f.read(min(CHUNK, left))):
                self.wfile.write(data)
                left -= len(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        return


def main(directory: str, port: str) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", int(port)), partial(Handler, directory=directory))
    server.serve_forever()


if __name__ == "__main__":
    main(*sys.argv[1:])
