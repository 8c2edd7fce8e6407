"""An endpoint that accepts connections and never answers (a hung load balancer, a store whose
disk stalls): a thread on 127.0.0.1 that accepts every connection and holds it open, silent,
until `stop`. Use it as a context manager."""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class SilentEndpoint:
    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._listener.settimeout(0.2)  # so that the thread sees `stop` soon
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="silent-endpoint", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(connection)  # held open, never read from nor written to
            self.accepted += 1

    def stop(self) -> None:
        """Stop accepting and close every connection held."""
        self._stopping.set()
        self._thread.join(timeout=5)
        self._listener.close()
        for connection in self._held:
            with contextlib.suppress(OSError):
                connection.close()

    def __enter__(self) -> SilentEndpoint:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
