"""A TCP proxy in front of a real server that can lose one reply: the command reaches the server and runs, then the
client's connection closes before the reply arrives (a network cut or a server restart at the wrong moment); and
that can cut every connection for a while, as a server that is down would (`refuse`, `restore`)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

CHUNK = 65_536


class LossyProxy:
    """Passes bytes both ways between each client and `upstream`; `lose_reply_to(marker)` arms it once."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._marker: bytes | None = None
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._refusing = False
        self.lost_replies = 0
        threading.Thread(target=self._accept, name="lossy-proxy", daemon=True).start()

    def lose_reply_to(self, marker: bytes) -> None:
        """The next client write that holds `marker` reaches the server; its reply does not reach the client."""
        with self._lock:
            self._marker = marker

    def refuse(self) -> None:
        """Cut every open connection, and each new one as soon as it arrives, until `restore()`."""
        with self._lock:
            self._refusing = True
            sockets, self._sockets = self._sockets, []
        _close(*sockets)

    def restore(self) -> None:
        """Pass connections to the server again."""
        with self._lock:
            self._refusing = False

    def _take_marker(self, data: bytes) -> bool:
        with self._lock:
            if self._marker is not None and self._marker in data:
                self._marker = None
                return True
            return False

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refusing = self._refusing
            if refusing:
                _close(client)
                continue
            server = socket.create_connection(self.upstream)
            with self._lock:
                self._sockets += [client, server]
            cut = threading.Event()
            threading.Thread(target=self._pump_requests, args=(client, server, cut), daemon=True).start()
            threading.Thread(target=self._pump_replies, args=(server, client, cut), daemon=True).start()

    def _pump_requests(self, client: socket.socket, server: socket.socket, cut: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(CHUNK):
                if self._take_marker(data):
                    cut.set()  # before the server can answer
                server.sendall(data)
        _close(client, server)

    def _pump_replies(self, server: socket.socket, client: socket.socket, cut: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while data := server.recv(CHUNK):
                if cut.is_set():
                    self.lost_replies += 1
                    break
                client.sendall(data)
        _close(client, server)

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            _close(*self._sockets)


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


@contextmanager
def lossy_proxy(host: str, port: int) -> Iterator[LossyProxy]:
    proxy = LossyProxy((host, port))
    try:
        yield proxy
    finally:
        proxy.close()
