"""A JSON webhook receiver for notification tests: a real HTTP server on 127.0.0.1 (an ephemeral
port) in a thread, keeping each POSTed body (Apprise's json:// sends {"title", "message",
"type"}) and the request's headers. Use it as a context manager; `url(...)` is the target URL."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


class Receiver:
    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.messages: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.messages.append(json.loads(body or b"{}"))
                receiver.headers.append(dict(self.headers))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="notify-receiver", daemon=True)
        self._thread.start()

    def url(self, path: str = "hook", userinfo: str = "") -> str:
        return f"json://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}/{path}"

    def titles(self) -> list[str]:
        return [message.get("title", "") for message in self.messages]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Receiver:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
