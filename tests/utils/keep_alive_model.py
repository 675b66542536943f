"""An OpenAI chat-completions endpoint that keeps connections open (HTTP/1.1), as real model endpoints do, and
records from which client connection each request came (pytest-httpserver answers one request per connection)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.utils.model_server import COMPLETIONS, completion


@dataclass
class KeepAliveModel:
    """Answers `echo: <the newest user message>`; `fail_first` inputs get one 503 first; with `drop_idle`, it closes
    each connection right after answering, without saying so (as an endpoint whose idle timeout passed)."""

    url: str = ""
    peers: list[tuple[str, int]] = field(default_factory=list)  # the client address of each request, in order
    fail_first: set[str] = field(default_factory=set)
    drop_idle: bool = False
    _failed: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, peer: tuple[str, int], body: bytes) -> tuple[int, dict[str, object]]:
        question = json.loads(body)["messages"][-1]["content"]
        with self._lock:
            self.peers.append(peer)
            if question in self.fail_first and question not in self._failed:
                self._failed.add(question)
                return 503, {"error": {"message": "busy", "type": "server_error", "code": "busy"}}
        return 200, completion(f"echo: {question}")


@contextmanager
def keep_alive_model() -> Iterator[KeepAliveModel]:
    model = KeepAliveModel()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            payload: dict[str, object]
            if self.path != COMPLETIONS:
                status, payload = 404, {"error": {"message": "no such path"}}
            else:
                status, payload = model.answer(self.client_address[:2], body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = model.drop_idle

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    model.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield model
    finally:
        server.shutdown()
        server.server_close()
