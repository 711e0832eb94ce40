"""llama.cpp's server behind TGI's API: batching, determinism, the prefix cache, and no second door.

Determinism is asserted as TGI and llama.cpp state it: with one sequence at a time and no
reused prompt cache, greedy replies repeat byte for byte; with batching, each reply depends
only on its own request (no reply mixes requests) though its last bits may vary.
"""

from __future__ import annotations

import asyncio
import re
import stat
import subprocess
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import API_KEY

WORDS = ["walrus", "trumpet", "saffron", "glacier", "origami", "lantern", "meteor", "cactus"]


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().as_posix()
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _listening_tcp_ports(pid: int) -> set[int]:
    """The TCP ports process `pid` listens on (IPv4 and IPv6), from /proc."""
    mine, ports = _socket_inodes(pid), set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in mine:  # 0A: LISTEN
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def _unix_listeners(pid: int) -> list[Path]:
    """The paths of the Unix sockets process `pid` listens on."""
    mine, paths = _socket_inodes(pid), []
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        # Num RefCount Protocol Flags Type St Inode Path; flags 00010000 is __SO_ACCEPTCON
        if len(fields) == 8 and fields[6] in mine and int(fields[3], 16) & 0x10000:
            paths.append(Path(fields[7]))
    return paths


def test_only_the_tgi_port_listens(served: tuple[subprocess.Popen[bytes], str]) -> None:
    """llama.cpp's own HTTP listener opens no TCP port, and its socket is ours alone."""
    process, base_url = served
    port = int(base_url.rsplit(":", 1)[1])
    assert _listening_tcp_ports(process.pid) == {port}
    (socket_path,) = _unix_listeners(process.pid)
    directory = socket_path.parent.stat()
    assert stat.S_IMODE(directory.st_mode) == 0o700  # nobody else can even reach the socket
    transport = httpx.HTTPTransport(uds=str(socket_path))
    with httpx.Client(transport=transport, base_url="http://llama.cpp") as inside:
        # Even this process's own user gets nothing from it without the key only the server holds.
        assert inside.post("/completion", json={"prompt": "Hi", "n_predict": 1}).status_code == 401
        ours = {"Authorization": f"Bearer {API_KEY}"}  # the TGI port's key opens nothing here either
        assert inside.post("/completion", json={"prompt": "Hi"}, headers=ours).status_code == 401
    # The TGI port itself asks for the key it was given.
    assert httpx.post(f"{base_url}/generate", json={"inputs": "Hi"}).status_code == 401


def test_greedy_is_repeatable_with_one_slot_and_no_prompt_cache(deterministic_url: str) -> None:
    body = {"inputs": "Write a haiku about rivers.", "parameters": {"max_new_tokens": 24, "top_n_tokens": 2}}
    with httpx.Client(base_url=deterministic_url, timeout=120) as http:
        replies = [http.post("/generate", json=body).content for _ in range(3)]
    assert replies[0] == replies[1] == replies[2]  # text, token ids and log-probabilities, byte for byte


async def test_batched_replies_each_answer_their_own_request(server_url: str) -> None:
    """Eight requests at once over four slots: each reply is its own request's, none mixes."""
    async with httpx.AsyncClient(base_url=server_url, timeout=300) as http:

        async def ask(word: str) -> str:
            body = {
                "messages": [{"role": "user", "content": f"Repeat this word three times: {word}"}],
                "max_tokens": 16,
                "temperature": 0,
            }
            reply = await http.post("/v1/chat/completions", json=body)
            assert reply.status_code == 200
            return str(reply.json()["choices"][0]["message"]["content"]).lower()

        replies = await asyncio.gather(*(ask(word) for word in WORDS))
    for word, reply in zip(WORDS, replies, strict=True):
        assert word in reply
        assert not any(other in reply for other in WORDS if other != word)


def test_info_reports_the_batch_size(server_url: str, deterministic_url: str) -> None:
    assert httpx.get(f"{server_url}/info").json()["max_batch_size"] == 4
    assert httpx.get(f"{deterministic_url}/info").json()["max_batch_size"] == 1


def _cached(http: httpx.Client) -> float:
    for family in text_string_to_metric_families(http.get("/metrics").text):
        if family.name == "s2a_prompt_cached_tokens":
            return sum(sample.value for sample in family.samples if sample.name.endswith("_total"))
    pytest.fail("/metrics has no s2a_prompt_cached_tokens")


def test_a_shared_prefix_is_prefilled_once(server_url: str) -> None:
    """Two questions on one long context: the second takes the context from llama.cpp's cache."""
    context = " ".join(
        f"Shop {i} sells {i + 2} kinds of apples and opens at {i % 12 + 1}." for i in range(30)
    )
    with httpx.Client(base_url=server_url, timeout=300) as http:
        shared = len(http.post("/tokenize", json={"inputs": context}).json())
        before = _cached(http)
        for question in ("Which shop sells the most kinds?", "When does shop 7 open?"):
            body = {
                "inputs": f"{context}\nQuestion: {question}\nAnswer:",
                "parameters": {"max_new_tokens": 1},
            }
            assert http.post("/generate", json=body).status_code == 200
        assert _cached(http) - before >= shared - 1


def test_without_the_prefix_cache_nothing_is_reused(deterministic_url: str) -> None:
    with httpx.Client(base_url=deterministic_url, timeout=300) as http:
        before = _cached(http)
        for _ in range(2):
            body = {"inputs": "The same prompt twice.", "parameters": {"max_new_tokens": 1}}
            assert http.post("/generate", json=body).status_code == 200
        assert _cached(http) == before


@pytest.mark.parametrize("pattern", [r"[0-9]{3}-[0-9]{4}", r"(yes|no)"])
def test_regex_grammar(server_url: str, pattern: str) -> None:
    body = {
        "inputs": "Answer:",
        "parameters": {"max_new_tokens": 12, "grammar": {"type": "regex", "value": pattern}},
    }
    reply = httpx.post(f"{server_url}/generate", json=body, timeout=120).json()
    assert re.fullmatch(pattern, reply["generated_text"]), reply
