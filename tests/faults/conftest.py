"""Fixtures of the fault suite: the misbehaving server, a wall clock, and a loopback-only guard.

The modules here mark their tests `allow_hosts(["127.0.0.1"])`: pytest-socket then lets
sockets be created but lets `connect()` reach 127.0.0.1 only. (Adding `enable_socket` would
lift every restriction: pytest-socket checks it first.) huggingface_hub swallows errors on
some of its own calls to the Hub, so `loopback_only` also records every connection and name
lookup and fails the test if anything but 127.0.0.1 was tried.
"""

from __future__ import annotations

import gc
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from huggingface_hub import close_session

from tests.faults.common import WALL
from tests.faults.misbehaving_tgi import MisbehavingTGI

LOOPBACK = "127.0.0.1"


@pytest.fixture(autouse=True)
def loopback_only() -> Iterator[list[str]]:
    """The hosts other than 127.0.0.1 that the test tried to reach; the test fails if any."""
    tried: list[str] = []
    connect, getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def recording_connect(sock: socket.socket, address: Any) -> None:
        if sock.family != socket.AF_UNIX and isinstance(address, tuple) and address[0] != LOOPBACK:
            tried.append(str(address[0]))
        connect(sock, address)

    def recording_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in (LOOPBACK, LOOPBACK.encode()):
            tried.append(str(host))
        return getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = recording_connect  # type: ignore[method-assign,assignment]
    socket.getaddrinfo = recording_getaddrinfo
    yield tried
    # pytest-socket may have restored its own state first; only undo what is still ours.
    if socket.socket.connect is recording_connect:
        socket.socket.connect = connect  # type: ignore[method-assign]
    if socket.getaddrinfo is recording_getaddrinfo:
        socket.getaddrinfo = getaddrinfo
    assert tried == [], f"the test tried to reach {tried}: only {LOOPBACK} is allowed"


@pytest.fixture(autouse=True)
def wall_clock() -> Iterator[None]:
    """Fail a test that took longer than `WALL`; start and end with no pooled connection."""
    close_session()  # huggingface_hub's shared client: no connection left from another test
    start = time.monotonic()
    yield
    close_session()
    elapsed = time.monotonic() - start
    assert elapsed < WALL, f"the test took {elapsed:.1f} s, more than {WALL} s"


@pytest.fixture(autouse=True, scope="module")
def no_leaks() -> Iterator[None]:
    """Collect garbage after each module, so that an unclosed socket or transport fails it."""
    yield
    # Its ResourceWarning then fails the module's last test rather than whichever later test
    # happens to trigger a collection; once per test would double the suite's time.
    gc.collect()


@pytest.fixture
def tgi() -> Iterator[MisbehavingTGI]:
    """A misbehaving TGI on 127.0.0.1; set `tgi.faults` before the call."""
    server = MisbehavingTGI().start()
    guard = threading.Timer(WALL, server.abort)  # a client stuck on this server is released
    guard.daemon = True
    guard.start()
    try:
        yield server
    finally:
        guard.cancel()
        close_session()
        server.stop()
    assert not server.aborted, f"a call was still blocked on the server after {WALL} s"
    assert server.errors == [], f"the misbehaving server itself broke: {server.errors!r}"
