"""An OpenAI chat-completions endpoint that keeps connections open (HTTP/1.1), as real model endpoints do, and
records from which client connection each request came (pytest-httpserver answers one request per connection).
Streams are written a word at a time, slowly, and it notices a client that stops reading them or leaves while it
holds back an answer."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.utils.model_protocols import OPENAI
from tests.utils.model_server import COMPLETIONS, completion, sse

STREAM_WORDS = 200
STREAM_PAUSE = 0.05


@dataclass
class KeepAliveModel:
    """Answers `echo: <the newest user message>`; `fail_first` inputs get one 503 first; with `drop_idle`, it closes
    each connection right after answering, without saying so (as an endpoint whose idle timeout passed).

    Asked to stream, it sends the echo and then up to STREAM_WORDS more words, one every STREAM_PAUSE seconds; a
    stream whose connection the client closed before the end is counted in `abandoned` (and not written further).
    The answer to an input in `hold` comes that many seconds late; a client that leaves meanwhile is counted in
    `abandoned` too.
    """

    url: str = ""  # scheme, host and port
    peers: list[tuple[str, int]] = field(default_factory=list)  # the client address of each request, in order
    fail_first: set[str] = field(default_factory=set)
    drop_idle: bool = False
    hold: dict[str, float] = field(default_factory=dict)
    abandoned: int = 0
    _failed: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def env(self) -> dict[str, str]:
        """The settings of a stack whose model this is."""
        return {**OPENAI.env(self.url), "LLM_MODEL": "test-model"}

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
            request = json.loads(body)
            if request.get("stream"):
                self.stream(str(request["messages"][-1]["content"]))
                return
            question = str(request["messages"][-1]["content"])
            if question in model.hold and self.client_leaves_within(model.hold[question]):
                with model._lock:
                    model.abandoned += 1
                self.close_connection = True
                return
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

        def client_leaves_within(self, seconds: float) -> bool:
            """Wait `seconds`; True as soon as the client closes its connection."""
            deadline = time.monotonic() + seconds
            while (remaining := deadline - time.monotonic()) > 0:
                readable, _, _ = select.select([self.connection], [], [], remaining)
                if readable:
                    try:
                        return bool(self.connection.recv(1, socket.MSG_PEEK) == b"")
                    except ConnectionResetError:
                        return True
            return False

        def stream(self, question: str) -> None:
            # Close-delimited (no length, no chunking): the body ends when this connection does.
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            words = [f"echo: {question}", *[" more"] * STREAM_WORDS]
            try:
                for word in words:
                    self.wfile.write(sse(word, usage=None).split("data: [DONE]")[0].encode())
                    self.wfile.flush()
                    time.sleep(STREAM_PAUSE)
                self.wfile.write(b"data: [DONE]\n\n")
            except (BrokenPipeError, ConnectionResetError):
                with model._lock:
                    model.abandoned += 1

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    model.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield model
    finally:
        server.shutdown()
        server.server_close()
