"""The local server over a real socket: an idle client connection is not closed under the client."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import uvicorn

from s2a.local.serve import _free_port, uvicorn_config, wait_healthy
from s2a.local.server import ServerSettings, create_app
from tests.fake_engine import FakeEngine

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

SETTINGS = ServerSettings(
    model_id="fake/model", max_concurrent_requests=4, max_input_tokens=32, max_total_tokens=48
)


def test_an_idle_connection_outlives_the_clients_pool_expiry() -> None:
    """httpx (huggingface_hub's client) reuses a pooled connection for up to 5 s idle.

    At uvicorn's default keep-alive, also 5 s, the server could close it just as the client
    sent on it: `Connection reset by peer`. The server must keep it open longer: here a client
    that keeps it 30 s finds it still open after 6 s idle.
    """
    engine = FakeEngine()
    port = _free_port()
    app = create_app(SETTINGS, lambda: engine)
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port, "warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_healthy(f"http://127.0.0.1:{port}", timeout=10)
        limits = httpx.Limits(keepalive_expiry=30.0)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", limits=limits) as client:
            ports = []
            for pause in (6.0, 0.0):
                response = client.get("/health")
                assert response.status_code == 200
                ports.append(response.extensions["network_stream"].get_extra_info("client_addr")[1])
                time.sleep(pause)
        assert ports[0] == ports[1]  # one connection: the server kept it open while it was idle
    finally:
        server.should_exit = True
        thread.join(timeout=10)
