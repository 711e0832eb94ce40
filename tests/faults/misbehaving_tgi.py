"""A TGI server that misbehaves on purpose, on a real TCP socket on 127.0.0.1.

Unlike `tests/fake_tgi.py`, nothing is mocked: huggingface_hub's clients, httpx, httpcore and
the kernel's TCP stack all run as in production, and the faults are what a real server (or
the network in front of it) does when it fails: it hangs, drops the connection before or in
the middle of the answer, cuts a stream short, sends an error event inside a 200 stream,
answers 429/503 with `Retry-After`, or speaks something that is not HTTP.

    server = MisbehavingTGI().start()
    server.faults = [Fault("status", 503, retry_after="0"), Fault("hang")]  # the next two calls
    ...                                  # then every call succeeds, answering `server.reply`
    server.requests                      # what arrived, in order (GET /info is always answered)
    server.stop()

One thread accepts, one thread serves each connection (HTTP/1.1, keep-alive). `stop()` cuts
every connection, so a client blocked on this server is released, and joins the threads.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal, Self

from tests.ledger import record

FaultKind = Literal[
    "hang", "close_mid_request", "close_mid_body", "partial_stream", "stream_error", "status", "garbage"
]

INFO: dict[str, Any] = {
    "model_id": "misbehaving/tgi",
    "model_sha": None,
    "model_pipeline_tag": "text-generation",
    "max_concurrent_requests": 4,
    "max_best_of": 1,
    "max_stop_sequences": 4,
    "max_input_tokens": 1000,
    "max_total_tokens": 2048,
    "validation_workers": 1,
    "max_client_batch_size": 1,
    "router": "misbehaving-tgi",
    "version": "3.0.0",
    "sha": None,
    "docker_label": None,
}
"""What `GET /info` answers, shaped as TGI's `Info` schema."""

_ERROR_TYPES = {
    400: "validation",
    422: "validation",
    424: "generation",
    429: "overloaded",
    500: "incomplete_generation",
    503: "unhealthy",
}
"""TGI's `error_type` for each status it answers with (503 comes from a proxy in front)."""


@dataclass(frozen=True)
class Fault:
    """How the server fails one request.

    kinds:
        `hang`: read the request, never answer (until the client gives up and closes);
        `close_mid_request`: close without a response, after the whole request, or, with
            `read_body=False`, after its headers only, with a reset (RST);
        `close_mid_body`: a 200 with a `Content-Length`, part of the body, then close;
        `partial_stream`: a chunked 200 event stream, all but the last events, then close (no
            final chunk, no `data: [DONE]`); with `chunked=False` the body has no length and no
            chunks, so only its missing last events tell the cut from the end;
        `stream_error`: a 200 event stream that carries TGI's error event (`error_type`);
        `status`: an HTTP error `status` with TGI's error body, and `retry_after` if given;
        `garbage`: bytes that are not HTTP, then close.
    """

    kind: FaultKind
    status: int = 503
    retry_after: str | None = None
    error_type: str = "overloaded"
    read_body: bool = True
    chunked: bool = True


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    body: dict[str, Any] | None
    """The JSON body; `None` when the fault closed the connection before reading it."""
    connection: int
    """The number of the connection it came on, from 1."""
    at: float
    """`time.monotonic()` when it had arrived."""


@dataclass(eq=False)
class _Connection:
    sock: socket.socket
    number: int
    buffer: bytes = b""
    cut: bool = False
    """The server cut it (`MisbehavingTGI.cut`), rather than the client closing it."""

    def read_until(self, marker: bytes) -> bytes | None:
        while marker not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buffer += data
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def read_exactly(self, size: int) -> bytes | None:
        while len(self.buffer) < size:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buffer += data
        body, self.buffer = self.buffer[:size], self.buffer[size:]
        return body


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _json(status: int, payload: Any, **headers: str) -> bytes:
    body = json.dumps(payload).encode()
    extra = {"Content-Type": "application/json", "Content-Length": str(len(body)), **headers}
    return _head(status, extra) + body


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _event(payload: Any) -> bytes:
    """An event as TGI frames it: `data:` and compact JSON, then a blank line."""
    return b"data:" + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


_STREAM_HEAD = _head(200, {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"})
_DONE = b"data: [DONE]\n\n"  # huggingface_hub ends a chat stream on exactly this line


def error_body(status: int) -> dict[str, str]:
    """TGI's error body for `status`."""
    return {"error": f"injected {status}", "error_type": _ERROR_TYPES.get(status, "http")}


def chat_completion(text: str) -> dict[str, Any]:
    """A non-streamed chat completion answering `text`."""
    return {
        "object": "chat.completion",
        "id": "",
        "created": 0,
        "model": INFO["model_id"],
        "system_fingerprint": "misbehaving",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }


def chat_chunk(piece: str, finish_reason: str | None = None) -> dict[str, Any]:
    """One event of a streamed chat completion."""
    return {
        "object": "chat.completion.chunk",
        "id": "",
        "created": 0,
        "model": INFO["model_id"],
        "system_fingerprint": "misbehaving",
        "choices": [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": piece},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
    }


@dataclass
class MisbehavingTGI:
    """TGI's `/info` and chat route on 127.0.0.1, failing the next requests as `faults` say."""

    reply: str = "Context: Paris is in France.\nQuestion: Where is Paris?"
    """What a successful chat call answers."""
    faults: list[Fault] = field(default_factory=list)
    """Failures for the next requests other than `GET /info`, one each, in order; then success."""
    info_fault: Fault | None = None
    """A failure for every `GET /info`; `None`: answer `INFO`."""
    requests: list[Seen] = field(default_factory=list)
    """Every request received, `GET /info` included, in order."""
    connections: int = 0
    """Connections accepted."""
    hanging: threading.Event = field(default_factory=threading.Event)
    """Set when a `hang` fault holds a request."""
    client_closed: threading.Event = field(default_factory=threading.Event)
    """Set when the client closed a connection that a `hang` fault held."""
    errors: list[BaseException] = field(default_factory=list)
    """Unexpected errors in the server's threads (a broken test server, not a client fault)."""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._aborted = threading.Event()
        self._open: set[_Connection] = set()
        self._threads: list[threading.Thread] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._acceptor = threading.Thread(target=self._accept, name="misbehaving-tgi", daemon=True)

    @property
    def posts(self) -> list[Seen]:
        """The requests other than `GET /info`: the model calls, one per attempt."""
        with self._lock:
            return [seen for seen in self.requests if seen.path != "/info"]

    @property
    def aborted(self) -> bool:
        """Whether `abort()` cut the connections (the wall-clock guard fired)."""
        return self._aborted.is_set()

    def start(self) -> Self:
        """Start accepting connections."""
        self._acceptor.start()
        return self

    def abort(self) -> None:
        """Cut every open connection and remember it: the wall-clock guard fired."""
        self._aborted.set()
        self.cut()

    def stop(self) -> None:
        """Stop accepting, cut every connection, and wait for the server's threads."""
        self._stopping.set()
        self.cut()
        with contextlib.suppress(OSError):  # already closed by the peer: nothing to wake
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._listener.close()
        self._acceptor.join(timeout=5)
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=5)
        alive = [t.name for t in [self._acceptor, *threads] if t.is_alive()]
        if alive:
            msg = f"the misbehaving server's threads did not stop: {alive}"
            raise RuntimeError(msg)

    def cut(self) -> None:
        """Cut every open connection (a hung request ends as if the server died)."""
        with self._lock:
            for conn in self._open:
                conn.cut = True
                with contextlib.suppress(OSError):  # already closed by the client
                    conn.sock.shutdown(socket.SHUT_RDWR)  # wakes the connection's blocked recv()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return  # the listener was shut down
            with self._lock:
                if self._stopping.is_set():
                    sock.close()
                    return
                self.connections += 1
                conn = _Connection(sock, self.connections)
                self._open.add(conn)
                thread = threading.Thread(
                    target=self._serve, args=(conn,), name=f"misbehaving-tgi-{conn.number}", daemon=True
                )
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: _Connection) -> None:
        try:
            while self._exchange(conn):
                pass
        except OSError:
            pass  # the client reset the connection, or stop() cut it
        except Exception as exc:  # a bug in this server: the fixture fails the test with it
            self.errors.append(exc)
        finally:
            with self._lock:
                self._open.discard(conn)
            conn.sock.close()

    def _exchange(self, conn: _Connection) -> bool:
        """Read one request and answer it (or not); whether the connection stays open."""
        head = conn.read_until(b"\r\n\r\n")
        if head is None:
            return False
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, path, _ = request_line.split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
        is_info = method == "GET" and path == "/info"
        with self._lock:
            fault = self.info_fault if is_info else (self.faults.pop(0) if self.faults else None)
        if fault is not None and fault.kind == "close_mid_request" and not fault.read_body:
            record("faults injected (misbehaving TGI, real sockets): reset")
            self._record(method, path, None, conn)
            # SO_LINGER 0: close() resets the connection instead of the orderly FIN.
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        raw = conn.read_exactly(int(headers.get("content-length", "0")))
        if raw is None:
            return False
        body = json.loads(raw) if raw else {}
        self._record(method, path, body, conn)
        if fault is not None:
            return self._fail(conn, fault)
        if is_info:
            conn.sock.sendall(_json(200, INFO))
        elif path.endswith("/v1/chat/completions"):
            conn.sock.sendall(self._success(body))
        else:
            conn.sock.sendall(_json(404, {"error": f"no route {path}", "error_type": "not_found"}))
        return True

    def _record(self, method: str, path: str, body: dict[str, Any] | None, conn: _Connection) -> None:
        with self._lock:
            self.requests.append(Seen(method, path, body, conn.number, time.monotonic()))

    def _success(self, body: dict[str, Any]) -> bytes:
        if not body.get("stream"):
            return _json(200, chat_completion(self.reply))
        pieces = re.findall(r"\s*\S+", self.reply)
        events = [_event(chat_chunk(piece)) for piece in pieces[:-1]]
        events += [_event(chat_chunk(pieces[-1], "stop")), _DONE]
        return _STREAM_HEAD + b"".join(_chunk(e) for e in events) + _chunk(b"")

    def _fail(self, conn: _Connection, fault: Fault) -> bool:
        record(f"faults injected (misbehaving TGI, real sockets): {fault.kind}")
        sock = conn.sock
        if fault.kind == "hang":
            self.hanging.set()
            try:
                while sock.recv(65536):  # b"": the client closed, or stop() cut the connection
                    pass
            except ConnectionResetError:
                pass  # the client closed with a reset
            if not conn.cut:
                self.client_closed.set()
            return False
        if fault.kind == "close_mid_body":
            whole = json.dumps(chat_completion(self.reply)).encode()
            head = {"Content-Type": "application/json", "Content-Length": str(len(whole))}
            sock.sendall(_head(200, head) + whole[: len(whole) // 3])
        elif fault.kind == "partial_stream":
            pieces = re.findall(r"\s*\S+", self.reply)[:-2]  # the last words never come
            first = b"".join(_event(chat_chunk(piece)) for piece in pieces)
            if fault.chunked:
                sock.sendall(_STREAM_HEAD + _chunk(first))
            else:  # delimited by the close alone: the cut looks like the end
                head = {"Content-Type": "text/event-stream", "Connection": "close"}
                sock.sendall(_head(200, head) + first)
        elif fault.kind == "stream_error":
            events = [
                _event(chat_chunk("Context:")),
                _event({"error": "injected", "error_type": fault.error_type}),
            ]
            sock.sendall(_STREAM_HEAD + b"".join(_chunk(e) for e in events) + _chunk(b""))
            return True
        elif fault.kind == "status":
            error = error_body(fault.status)
            retry = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            sock.sendall(_json(fault.status, error, **retry))
            return True
        elif fault.kind == "garbage":
            sock.sendall(b"\x16\x03\x01\x00\xa5 SSH-2.0-not-http\r\n\r\n")  # a TLS record, an SSH banner
        sock.shutdown(socket.SHUT_WR)  # close_mid_request, after the whole request: a clean FIN
        return False


def refused_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: a port that was bound, then closed."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
