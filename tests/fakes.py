"""A misbehaving HTTP server for the faults a real etcd cannot be made to produce.

:class:`FakeServer` listens on ``127.0.0.1`` on a free port, in a background
thread of the test process. Each request it receives is recorded as a
:class:`Request` and answered with the next scripted :class:`Answer`:

* :class:`Reply`: a complete response (``Reply.etcd`` adds etcd's headers);
* :class:`Truncated`: a ``Content-Length`` larger than the body sent, then a close;
* :class:`Chunked`: a chunked response that ends, stalls or hangs up after its
  chunks; :func:`dropped_watch` is the empty 200 etcd sends to a watcher it drops;
* :class:`HeadersThenStall`: the headers, then nothing until the server closes;
* :class:`Stall`: no answer at all until the server closes;
* :class:`Hangup`: the connection is closed without an answer.

A script entry may also be a function of the :class:`Request` that returns
the answer. When the script is exhausted, :attr:`FakeServer.default` answers.

.. code-block:: python

    with FakeServer(Reply.etcd({"action": "get", "node": {"key": "/a", "value": "1"}})) as fake:
        with etcd.Client(host=fake.host, port=fake.port) as client:
            assert client.read("/a").value == "1"
        assert fake.requests[0].target == "/v2/keys/a"

:func:`refusing_port` gives a port on which connections are refused.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import struct
import threading
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal, Protocol

__all__ = [
    "DEFAULT_CLUSTER_ID",
    "Answer",
    "Chunked",
    "FakeServer",
    "Hangup",
    "HeadersThenStall",
    "Reply",
    "Request",
    "Responder",
    "Stall",
    "Truncated",
    "dropped_watch",
    "etcd_headers",
    "refusing_port",
]

#: The cluster id :func:`etcd_headers` sends unless told otherwise.
DEFAULT_CLUSTER_ID = "cdf818194e3a8c32"

_MAX_LINE = 65536
_MAX_HEADERS = 200


def etcd_headers(
    index: int = 1, *, cluster_id: str | None = DEFAULT_CLUSTER_ID, raft_index: int | None = None
) -> dict[str, str]:
    """The headers a real etcd v2 server puts on a keys answer.

    :param index: the ``X-Etcd-Index``.
    :param cluster_id: the ``X-Etcd-Cluster-Id``; ``None`` leaves it out.
    :param raft_index: the ``X-Raft-Index``; ``index + 1`` by default.
    """
    headers = {
        "Content-Type": "application/json",
        "X-Etcd-Index": str(index),
        "X-Raft-Index": str(index + 1 if raft_index is None else raft_index),
        "X-Raft-Term": "2",
    }
    if cluster_id is not None:
        headers["X-Etcd-Cluster-Id"] = cluster_id
    return headers


@dataclass(frozen=True)
class Request:
    """One request as the fake server received it.

    :ivar method: ``"GET"``, ``"PUT"`` ...
    :ivar target: the raw request target, e.g. ``"/v2/keys/a%20b?wait=true"``.
    :ivar headers: the header lines in the order received.
    :ivar body: the raw body (empty when none was sent).
    """

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def path(self) -> str:
        """The target before ``?``, still percent-encoded."""
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        """The raw query string (``""`` when there is none)."""
        return self.target.partition("?")[2]

    @property
    def params(self) -> dict[str, list[str]]:
        """The decoded query string."""
        return urllib.parse.parse_qs(self.query, keep_blank_values=True)

    @property
    def form(self) -> dict[str, list[str]]:
        """The body decoded as ``application/x-www-form-urlencoded``."""
        return urllib.parse.parse_qs(self.body.decode("utf-8"), keep_blank_values=True)

    def header(self, name: str) -> str | None:
        """The value of the first header called *name* (any case), or ``None``."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None


class _Connection:
    """What an answer may do with the connection it answers on."""

    def __init__(self, sock: socket.socket, closing: threading.Event) -> None:
        self.sock = sock
        self.closing = closing

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_head(
        self, status: int, headers: Mapping[str, str], extra: Sequence[tuple[str, str]]
    ) -> None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        lines = [f"HTTP/1.1 {status} {reason}"]
        given = {name.lower() for name in headers}
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        lines.extend(f"{name}: {value}" for name, value in extra if name.lower() not in given)
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def wait_for_close(self) -> None:
        """Block until the server closes."""
        self.closing.wait()


class Answer(Protocol):
    """Something the fake server can do in response to a request."""

    def play(self, conn: _Connection, request: Request) -> bool:
        """Act on the connection; return whether it may serve another request."""
        ...


#: A script entry: an answer, or a function that picks one from the request.
Responder = Answer | Callable[[Request], Answer]


@dataclass(frozen=True)
class Reply:
    """A complete response with a ``Content-Length``.

    :ivar status: the HTTP status.
    :ivar body: the body, sent as is.
    :ivar headers: headers to send; ``Content-Length`` is added unless given.
    :ivar close: close the connection after the answer.
    """

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    close: bool = False

    @classmethod
    def json(
        cls, payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Reply:
        """A JSON body with ``Content-Type: application/json``."""
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        return cls(status, json.dumps(payload).encode("utf-8"), all_headers)

    @classmethod
    def etcd(
        cls,
        payload: Any,
        status: int = 200,
        *,
        index: int = 1,
        cluster_id: str | None = DEFAULT_CLUSTER_ID,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """A JSON body with the headers of a real etcd (see :func:`etcd_headers`)."""
        all_headers = {**etcd_headers(index, cluster_id=cluster_id), **(headers or {})}
        return cls(status, json.dumps(payload).encode("utf-8"), all_headers)

    @classmethod
    def text(cls, text: str, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
        """A UTF-8 plain-text body."""
        all_headers = {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}
        return cls(status, text.encode("utf-8"), all_headers)

    def play(self, conn: _Connection, request: Request) -> bool:
        extra = [("Content-Length", str(len(self.body)))]
        if self.close:
            extra.append(("Connection", "close"))
        conn.send_head(self.status, self.headers, extra)
        if request.method != "HEAD":
            conn.send(self.body)
        return not self.close


@dataclass(frozen=True)
class Truncated:
    """Headers announcing more body than is sent; the connection then closes.

    :ivar body: the part of the body that is sent.
    :ivar declared_length: the ``Content-Length``; ``len(body) + 100`` by default.
    """

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    declared_length: int | None = None

    def play(self, conn: _Connection, request: Request) -> bool:
        length = len(self.body) + 100 if self.declared_length is None else self.declared_length
        if length <= len(self.body):
            raise ValueError("a truncated answer must declare more than it sends")
        conn.send_head(self.status, self.headers, [("Content-Length", str(length))])
        conn.send(self.body)
        return False


@dataclass(frozen=True)
class Chunked:
    """A ``Transfer-Encoding: chunked`` response.

    :ivar chunks: the chunks to send (empty ones are skipped: an empty chunk
        would end the body).
    :ivar then: after the chunks, ``"end"`` sends the final chunk (the body is
        complete), ``"stall"`` sends nothing more until the server closes, and
        ``"hangup"`` closes the connection mid-body.
    """

    status: int = 200
    chunks: Sequence[bytes] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    then: Literal["end", "stall", "hangup"] = "end"

    def play(self, conn: _Connection, request: Request) -> bool:
        conn.send_head(self.status, self.headers, [("Transfer-Encoding", "chunked")])
        for chunk in self.chunks:
            if chunk:
                conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        if self.then == "end":
            conn.send(b"0\r\n\r\n")
            return True
        if self.then == "stall":
            conn.wait_for_close()
        return False


def dropped_watch(index: int = 1, *, cluster_id: str | None = DEFAULT_CLUSTER_ID) -> Chunked:
    """What etcd sends a watcher it drops: chunked 200 headers, then an empty body."""
    return Chunked(200, (), etcd_headers(index, cluster_id=cluster_id))


@dataclass(frozen=True)
class HeadersThenStall:
    """The response headers (chunked, as a watch sends them), then nothing.

    The connection stays silent until the server closes.
    """

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)

    def play(self, conn: _Connection, request: Request) -> bool:
        return Chunked(self.status, (), self.headers, then="stall").play(conn, request)


@dataclass(frozen=True)
class Stall:
    """Read the request, never answer, and hold the connection until the server closes."""

    def play(self, conn: _Connection, request: Request) -> bool:
        conn.wait_for_close()
        return False


@dataclass(frozen=True)
class Hangup:
    """Close the connection without an answer.

    :ivar reset: send a TCP reset instead of an orderly close.
    """

    reset: bool = False

    def play(self, conn: _Connection, request: Request) -> bool:
        if self.reset:
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return False


class _BadRequest(Exception):
    pass


def _read_request(rfile: Any) -> Request | None:
    """Read one request from a connection; ``None`` when the peer closed first."""
    line = rfile.readline(_MAX_LINE + 1)
    while line in (b"\r\n", b"\n"):  # tolerated before a request line (RFC 9112 §2.2)
        line = rfile.readline(_MAX_LINE + 1)
    if not line:
        return None
    if len(line) > _MAX_LINE:
        raise _BadRequest("request line too long")
    parts = line.decode("latin-1").rstrip("\r\n").split(" ")
    if len(parts) != 3:
        raise _BadRequest(f"malformed request line {line!r}")
    method, target, _version = parts
    headers: list[tuple[str, str]] = []
    while True:
        line = rfile.readline(_MAX_LINE + 1)
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            break
        if len(headers) >= _MAX_HEADERS or len(line) > _MAX_LINE:
            raise _BadRequest("too many or too long headers")
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise _BadRequest(f"malformed header line {line!r}")
        headers.append((name.strip(), value.strip()))
    lookup = {name.lower(): value for name, value in headers}
    if "chunked" in lookup.get("transfer-encoding", "").lower():
        body = _read_chunked(rfile)
    else:
        length = int(lookup.get("content-length", "0") or "0")
        body = rfile.read(length) if length else b""
        if len(body) != length:
            return None
    return Request(method, target, tuple(headers), body)


def _read_chunked(rfile: Any) -> bytes:
    body = bytearray()
    while True:
        size_line = rfile.readline(_MAX_LINE + 1)
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline(_MAX_LINE + 1) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return bytes(body)
        body += rfile.read(size)
        rfile.readline(_MAX_LINE + 1)


class FakeServer:
    """An HTTP server in a background thread that answers as it is scripted.

    :param answers: the answers to the first requests, in order.
    :param default: the answer once the script is used up; by default a
        plain-text 599, which no client should take for a success.
    :param host: the address to listen on.

    Use it as a context manager, or call :meth:`start` and :meth:`close`.
    Closing ends every stalled answer and every open connection, and waits
    for the server's threads to finish. An unexpected error in one of them is
    raised again by :meth:`close`.
    """

    def __init__(
        self, *answers: Responder, default: Responder | None = None, host: str = "127.0.0.1"
    ) -> None:
        self._host = host
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._script: deque[Responder] = deque(answers)
        self._default: Responder = default or Reply.text("fake server: nothing scripted\n", 599)
        self._requests: list[Request] = []
        self._connections = 0
        self._errors: list[BaseException] = []
        self._closing = threading.Event()
        self._open: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._listener: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._port = 0

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> FakeServer:
        """Listen and start serving; returns once connections are being accepted."""
        if self._listener is not None:
            raise RuntimeError("the fake server is already started")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self._host, 0))
        listener.listen(64)
        listener.setblocking(False)
        self._listener = listener
        self._port = listener.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        ready = threading.Event()
        thread = threading.Thread(
            target=self._accept_loop, args=(ready,), name=f"fake-etcd:{self._port}", daemon=True
        )
        self._threads.append(thread)
        thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake server did not start")
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Stop serving, end stalled answers, close every connection, join the threads.

        :raises RuntimeError: a thread did not end within *timeout* seconds.
        :raises BaseException: the first unexpected error of a server thread.
        """
        if self._listener is None or self._closing.is_set():
            return
        self._closing.set()
        assert self._wake_w is not None
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        with self._lock:
            still_open = list(self._open)
        for sock in still_open:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        stuck = []
        for thread in list(self._threads):
            thread.join(timeout)
            if thread.is_alive():
                stuck.append(thread.name)
        for own in (self._listener, self._wake_r, self._wake_w):
            if own is not None:
                own.close()
        if stuck:
            raise RuntimeError(f"fake server threads did not end: {', '.join(stuck)}")
        if self._errors:
            raise self._errors[0]

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- what tests use ----------------------------------------------------

    @property
    def host(self) -> str:
        """The address the server listens on."""
        return self._host

    @property
    def port(self) -> int:
        """The port the server listens on (0 before :meth:`start`)."""
        return self._port

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self._host}:{self._port}"

    @property
    def requests(self) -> list[Request]:
        """The requests received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def connections(self) -> int:
        """How many connections have been accepted."""
        with self._lock:
            return self._connections

    @property
    def open_connections(self) -> int:
        """How many accepted connections are still open."""
        with self._lock:
            return len(self._open)

    @property
    def default(self) -> Responder:
        """The answer used when the script is exhausted."""
        with self._lock:
            return self._default

    @default.setter
    def default(self, answer: Responder) -> None:
        with self._lock:
            self._default = answer

    def script(self, *answers: Responder) -> None:
        """Append answers to the script."""
        with self._lock:
            self._script.extend(answers)

    @property
    def pending(self) -> int:
        """How many scripted answers have not been used yet."""
        with self._lock:
            return len(self._script)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[Request]:
        """Wait until at least *count* requests have arrived, and return them all.

        :raises TimeoutError: fewer arrived within *timeout* seconds.
        """
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._requests) >= count, timeout):
                raise TimeoutError(
                    f"the fake server received {len(self._requests)} of {count} requests"
                )
            return list(self._requests)

    # -- server threads ----------------------------------------------------

    def _accept_loop(self, ready: threading.Event) -> None:
        assert self._listener is not None and self._wake_r is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            ready.set()
            while not self._closing.is_set():
                for key, _ in selector.select():
                    if key.fileobj is not self._listener or self._closing.is_set():
                        continue
                    try:
                        sock, _addr = self._listener.accept()
                    except (BlockingIOError, InterruptedError):
                        continue
                    sock.setblocking(True)
                    self._start_connection(sock)

    def _start_connection(self, sock: socket.socket) -> None:
        with self._lock:
            if self._closing.is_set():
                sock.close()
                return
            self._connections += 1
            self._open.add(sock)
            thread = threading.Thread(
                target=self._serve_connection,
                args=(sock,),
                name=f"fake-etcd:{self._port}:conn{self._connections}",
                daemon=True,
            )
            self._threads.append(thread)
        thread.start()

    def _next_answer(self, request: Request) -> Answer:
        with self._changed:
            self._requests.append(request)
            responder = self._script.popleft() if self._script else self._default
            self._changed.notify_all()
        if callable(responder):
            return responder(request)
        return responder

    def _serve_connection(self, sock: socket.socket) -> None:
        conn = _Connection(sock, self._closing)
        try:
            with sock.makefile("rb") as rfile:
                while not self._closing.is_set():
                    try:
                        request = _read_request(rfile)
                    except _BadRequest as exc:
                        Reply.text(f"{exc}\n", 400, {"Connection": "close"}).play(
                            conn, Request("GET", "/", (), b"")
                        )
                        return
                    if request is None:
                        return
                    answer = self._next_answer(request)
                    if not answer.play(conn, request):
                        return
                    if (request.header("connection") or "").lower() == "close":
                        return
        except OSError:
            pass  # the client went away, or close() shut the socket down
        except BaseException as exc:  # a bug in the fake or in a responder: report it
            with self._lock:
                self._errors.append(exc)
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            with self._lock:  # after the close, so open_connections counts it closed
                self._open.discard(sock)


@contextlib.contextmanager
def refusing_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A port that is bound but not listening, so connecting to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        yield sock.getsockname()[1]


@dataclass(frozen=True)
class ReplyThenClose:
    """A complete answer that does not announce a close, then a close of the connection.

    This is a keep-alive connection that the server (or a proxy's idle timer)
    drops between two requests.

    :ivar answer: the answer sent first.
    :ivar reset: close with a TCP reset instead of an orderly close.
    """

    answer: Reply
    reset: bool = False

    def play(self, conn: _Connection, request: Request) -> bool:
        self.answer.play(conn, request)
        if self.reset:
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return False


@dataclass(frozen=True)
class Raw:
    """Bytes sent exactly as given (any framing, or none), then the connection is closed."""

    data: bytes

    def play(self, conn: _Connection, request: Request) -> bool:
        conn.send(self.data)
        return False


# --------------------------------------------------------------------------
# A fault-injecting TCP proxy in front of a real server

__all__ += ["Fault", "FaultProxy"]

_CHUNK = 65536


@dataclass(frozen=True)
class Fault:
    """What a :class:`FaultProxy` does to the traffic it relays while the fault is armed.

    :ivar kind: one of

        * ``"latency"``: each piece of an answer is relayed *delay* seconds late;
        * ``"drip"``: answers are relayed one byte every *delay* seconds;
        * ``"reset"``: *after* bytes of the next answer are relayed, then both
          connections are reset (a reset mid-body when *after* is past the headers);
        * ``"cut"``: the request reaches the server, which answers, but the
          client's connection is closed before any of the answer is relayed
          (close right after sending: the outcome is unknown to the client);
        * ``"blackhole"``: nothing is relayed in either direction any more, and
          the connections stay open and silent.
    :ivar delay: seconds, for ``latency`` and ``drip``.
    :ivar after: bytes relayed before a ``reset``.
    """

    kind: Literal["latency", "drip", "reset", "cut", "blackhole"]
    delay: float = 0.0
    after: int = 0


class _Pipe:
    """One client connection and its connection to the server."""

    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client = client
        self.server = server
        self.faulted: Fault | None = None  # the fault that took this connection over
        self.relayed = 0
        self._lock = threading.Lock()
        self._pumps = 2

    def pump_done(self) -> None:
        """One direction has ended; the second one to end closes both sockets."""
        with self._lock:
            self._pumps -= 1
            last = self._pumps == 0
        if last:
            self.client.close()
            self.server.close()

    def shut(self, *, reset: bool = False) -> None:
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                if reset:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RDWR)


class FaultProxy:
    """A TCP proxy on ``127.0.0.1`` in front of a real server, that injects faults on demand.

    Until :meth:`inject` arms a :class:`Fault`, bytes are relayed as they come.
    A fault armed with ``times=n`` takes over the next *n* answers (each on the
    connection it arrives on) and is then disarmed; with ``times=None`` it
    stays until :meth:`heal`. :attr:`faults_applied` counts the answers a fault
    took over, so a test can check that its fault really happened.

    :param host: the server's address.
    :param port: the server's port.
    :param accept_after: keep the proxy's accept queue full for this many
        seconds, so that the kernel drops new connections' SYNs and clients
        connect only when they send it again (about a second later): an
        overloaded server, whose TCP connects are slow.
    """

    def __init__(self, host: str, port: int, *, accept_after: float = 0.0) -> None:
        self._upstream = (host, port)
        self._accept_after = accept_after
        self._filler: socket.socket | None = None
        self._lock = threading.Lock()
        self._fault: Fault | None = None
        self._times: int | None = None
        self._applied = 0
        self._closing = threading.Event()
        self._pipes: list[_Pipe] = []
        self._threads: list[threading.Thread] = []
        self._listener: socket.socket | None = None
        self.port = 0
        self.host = "127.0.0.1"

    def __enter__(self) -> FaultProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, 0))
        listener.listen(0 if self._accept_after else 64)
        listener.settimeout(0.2)
        self._listener = listener
        self.port = listener.getsockname()[1]
        if self._accept_after:  # one connection that nobody accepts fills the queue
            self._filler = socket.create_connection((self.host, self.port))
        self._spawn(self._accept_loop, "accept")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:port``."""
        return f"http://{self.host}:{self.port}"

    @property
    def faults_applied(self) -> int:
        """How many answers a fault has taken over so far."""
        with self._lock:
            return self._applied

    def inject(self, fault: Fault, *, times: int | None = 1) -> None:
        """Arm *fault* for the next *times* answers (``None``: until :meth:`heal`)."""
        with self._lock:
            self._fault, self._times = fault, times

    def heal(self) -> None:
        """Disarm the fault; connections a fault took over stay as the fault left them."""
        with self._lock:
            self._fault, self._times = None, None

    def drop_connections(self) -> None:
        """Close every relayed connection (new ones are accepted as before)."""
        with self._lock:
            pipes, self._pipes = self._pipes, []
        for pipe in pipes:
            pipe.shut()

    def close(self) -> None:
        """Stop accepting, close every connection and wait for the relay threads."""
        self._closing.set()
        self.drop_connections()
        for thread in self._threads:
            thread.join(10)
        if self._listener is not None:
            self._listener.close()
        if self._filler is not None:
            self._filler.close()

    # -- relay threads -----------------------------------------------------

    def _spawn(self, target: Callable[..., None], name: str, *args: Any) -> None:
        thread = threading.Thread(
            target=target, args=args, name=f"fault-proxy:{self.port}:{name}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        if self._filler is not None and not self._closing.wait(self._accept_after):
            with contextlib.suppress(OSError):
                self._listener.accept()[0].close()
            self._filler.close()
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            client.settimeout(None)
            try:
                server = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            pipe = _Pipe(client, server)
            with self._lock:
                self._pipes.append(pipe)
            self._spawn(self._requests, "up", pipe)
            self._spawn(self._answers, "down", pipe)

    def _take(self, pipe: _Pipe) -> Fault | None:
        """The fault for the answer that starts now on *pipe*, consuming one use."""
        with self._lock:
            fault = self._fault
            if fault is None:
                return None
            if self._times is not None:
                self._times -= 1
                if self._times <= 0:
                    self._fault, self._times = None, None
            self._applied += 1
        pipe.faulted, pipe.relayed = fault, 0
        return fault

    def _requests(self, pipe: _Pipe) -> None:
        try:
            while data := pipe.client.recv(_CHUNK):
                with self._lock:
                    swallowed = self._fault is not None and self._fault.kind == "blackhole"
                if swallowed or (pipe.faulted is not None and pipe.faulted.kind == "blackhole"):
                    continue
                pipe.server.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                pipe.server.shutdown(socket.SHUT_WR)
            pipe.pump_done()

    def _answers(self, pipe: _Pipe) -> None:
        try:
            while data := pipe.server.recv(_CHUNK):
                fault = pipe.faulted or self._take(pipe)
                if fault is None:
                    pipe.client.sendall(data)
                elif not self._play(pipe, fault, data):
                    return
        except OSError:
            pass
        finally:
            if pipe.faulted is None or pipe.faulted.kind != "blackhole":
                with contextlib.suppress(OSError):
                    pipe.client.shutdown(socket.SHUT_WR)
            pipe.pump_done()

    def _play(self, pipe: _Pipe, fault: Fault, data: bytes) -> bool:
        """Relay *data* as *fault* says; return whether to go on relaying."""
        if fault.kind == "latency":
            if self._closing.wait(fault.delay):
                return False
            pipe.client.sendall(data)
            pipe.faulted = None  # one answer late; the next one is judged again
            return True
        if fault.kind == "drip":
            for i in range(len(data)):
                if self._closing.wait(fault.delay):
                    return False
                pipe.client.sendall(data[i : i + 1])
            return True
        if fault.kind == "reset":
            room = fault.after - pipe.relayed
            if room > 0:
                pipe.client.sendall(data[:room])
                pipe.relayed += min(room, len(data))
            if pipe.relayed >= fault.after:
                pipe.shut(reset=True)
                return False
            return True
        if fault.kind == "cut":
            pipe.shut()
            return False
        # blackhole: hold everything until the proxy closes
        self._closing.wait()
        return False


__all__ += ["Raw", "ReplyThenClose", "Trickle"]


@dataclass(frozen=True)
class Trickle:
    """*head* at once, then *tail* a few bytes at a time, until the server closes.

    :ivar head: bytes sent at once (a status line, complete headers ...).
    :ivar tail: bytes then sent *step* at a time, one step every *interval* seconds.
    :ivar repeat: start *tail* again when it is sent (an answer that never ends).
    """

    head: bytes = b""
    tail: bytes = b""
    interval: float = 0.05
    step: int = 1
    repeat: bool = False

    def play(self, conn: _Connection, request: Request) -> bool:
        conn.send(self.head)
        sent = 0
        while not conn.closing.wait(self.interval):
            if sent >= len(self.tail):
                if not self.repeat:
                    conn.wait_for_close()
                    return False
                sent = 0
            conn.send(self.tail[sent : sent + self.step])
            sent += self.step
        return False


# --------------------------------------------------------------------------
# Answers that arrive a little at a time, forever

__all__ += ["Drip", "EndlessContinue"]


@dataclass(frozen=True)
class EndlessContinue:
    """An interim ``100 Continue`` every *every* seconds, and never a final answer."""

    every: float = 0.1

    def play(self, conn: _Connection, request: Request) -> bool:
        while not conn.closing.wait(self.every):
            conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        return False


@dataclass(frozen=True)
class Drip:
    """*answer* sent one byte every *every* seconds (headers and body alike).

    :ivar answer: the complete answer, as bytes on the wire.
    """

    answer: bytes
    every: float = 0.05

    def play(self, conn: _Connection, request: Request) -> bool:
        for i in range(len(self.answer)):
            if conn.closing.wait(self.every):
                return False
            conn.send(self.answer[i : i + 1])
        return False
