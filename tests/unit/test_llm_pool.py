"""The LLM server pool's choices: by load, with affinity, failed servers out of rotation."""

from __future__ import annotations

import pytest

from expound.llm.pool import FIRST_BACKOFF_S, MAX_BACKOFF_S, ServerPool, base_urls

A, B, C = "http://a:8000", "http://b:8000", "http://c:8000"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def pool(*urls: str) -> tuple[ServerPool, Clock]:
    clock = Clock()
    return ServerPool(list(urls or (A, B)), clock=clock), clock


def test_requests_spread_to_the_least_loaded_server() -> None:
    servers, _ = pool(A, B, C)
    chosen = []
    for _ in range(6):
        server = servers.choose()
        servers.started(server)
        chosen.append(server.url)
    assert chosen == [A, B, C, A, B, C]
    # One answers: the next request goes to it.
    servers.answered(servers.servers[1], 0.5)
    assert servers.choose().url == B


def test_among_equally_loaded_servers_the_faster_one_is_chosen() -> None:
    servers, _ = pool(A, B)
    for server, seconds in ((servers.servers[0], 2.0), (servers.servers[1], 0.5)):
        servers.started(server)
        servers.answered(server, seconds)
    assert servers.choose().url == B


def test_affinity_keeps_a_key_on_its_server_unless_it_is_much_busier() -> None:
    servers, _ = pool(A, B)
    first = servers.choose(affinity="decision-1")
    servers.started(first)
    # The key stays put while its server is at most one request busier than the least loaded.
    assert servers.choose(affinity="decision-1") is first
    servers.started(first)
    moved = servers.choose(affinity="decision-1")
    assert moved is not first
    assert servers.choose(affinity="decision-1") is moved
    servers.forget("decision-1")
    assert "decision-1" not in servers._affinity


def test_a_failed_server_leaves_rotation_for_a_doubling_backoff_then_returns() -> None:
    servers, clock = pool(A, B)
    a = servers.servers[0]
    for failures in range(1, 8):
        servers.started(a)
        servers.failed(a, "ConnectError")
        backoff = min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** (failures - 1))
        assert a.down_until == pytest.approx(clock.now + backoff)
        assert servers.choose().url == B
        clock.now += backoff - 0.01
        assert servers.choose().url == B, "still out just before the back-off ends"
        clock.now += 0.02
        assert servers.choose().url == A, "back in rotation after it"
    assert servers.states()[0].failed == 7 and servers.states()[0].last_error == "ConnectError"
    servers.started(a)
    servers.answered(a, 0.1)
    assert a.failures == 0 and servers.states()[0].in_rotation


def test_a_request_that_failed_on_a_server_goes_elsewhere_and_nobody_is_refused() -> None:
    servers, clock = pool(A, B)
    assert servers.choose(avoid=frozenset({A})).url == B
    for server in servers.servers:
        servers.started(server)
        servers.failed(server, "ReadTimeout")
        clock.now += 1
    # Both out of rotation: the one that failed longest ago is tried anyway.
    assert servers.choose().url == A
    assert servers.choose(avoid=frozenset({A})).url == B


def test_a_healthy_probe_brings_a_server_back_early() -> None:
    servers, _ = pool(A, B)
    a = servers.servers[0]
    servers.started(a)
    servers.failed(a, "HTTP 503")
    servers.probed(a, healthy=False)
    assert not servers.states()[0].in_rotation
    servers.probed(a, healthy=True)
    assert servers.states()[0].in_rotation and servers.choose().url == A


def test_base_urls_are_one_or_several_http_urls() -> None:
    assert base_urls("http://a:8000/") == ["http://a:8000"]
    assert base_urls("http://a:8000, https://b/v") == ["http://a:8000", "https://b/v"]
    for bad in ("", "http://a,", "ftp://a", "http://a,,http://b"):
        with pytest.raises(ValueError, match="EXPOUND_LLM_BASE_URL"):
            base_urls(bad)
    with pytest.raises(ValueError, match="listed twice"):
        ServerPool([A, A])
