"""A pool of LLM servers behind one client: spread by load, the failed ones out of rotation.

A GPU deployment runs several vLLM servers (one per GPU or node). The service gets their
base URLs (``EXPOUND_LLM_BASE_URL``, comma-separated) and :class:`ServerPool` decides, per
request, which one answers:

- **By load**: the server with the fewest requests in flight from this process, ties broken
  by its recent latency (an exponentially weighted mean), then by order.
- **Affinity**: a caller may name a key (a decision's drafting chains send several requests
  over one growing prompt); the same key goes to the same server while it is in rotation and
  not busier than the least-loaded one by more than :data:`AFFINITY_SLACK`, so vLLM's prefix
  cache on that server carries the prompt.
- **Out of rotation**: a server that refused a connection, reset it, timed out or answered
  5xx is taken out for a back-off (:data:`FIRST_BACKOFF_S`, doubling to
  :data:`MAX_BACKOFF_S`) and tried again after it, or sooner when its ``/health`` answers.
  When every server is out, the least recently failed one is tried anyway: a pool never
  refuses for want of a server it has not just seen fail.

The pool holds no HTTP code: :class:`expound.llm.client.CompletionsClient` asks it whom to
call and tells it how that went, and moves a failed request to another server within the
caller's deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

FIRST_BACKOFF_S = 2.0
MAX_BACKOFF_S = 60.0
AFFINITY_SLACK = 1
LATENCY_WEIGHT = 0.2  # the weight of the newest latency in the running mean


@dataclass
class PooledServer:
    """One server of the pool and what this process knows of it."""

    url: str
    position: int
    in_flight: int = 0
    latency_s: float = 0.0  # running mean of answered requests (0: none yet)
    failures: int = 0  # consecutive failures
    down_until: float = 0.0  # monotonic time it comes back into rotation
    last_failure: float = 0.0
    last_error: str = ""
    answered: int = 0
    failed: int = 0

    def in_rotation(self, now: float) -> bool:
        """True unless it failed and its back-off has not run out."""
        return now >= self.down_until


@dataclass(frozen=True)
class ServerState:
    """What the pool reports of one server (health, metrics, logs)."""

    url: str
    in_rotation: bool
    in_flight: int
    latency_ms: float
    answered: int
    failed: int
    last_error: str


@dataclass
class ServerPool:
    """Chooses a server per request; learns from each outcome."""

    urls: Sequence[str]
    clock: Callable[[], float] = time.monotonic
    servers: list[PooledServer] = field(init=False)
    _affinity: dict[str, str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if not self.urls:
            raise ValueError("an LLM server pool needs at least one base URL")
        if len(set(self.urls)) != len(self.urls):
            raise ValueError("an LLM base URL is listed twice")
        self.servers = [PooledServer(url, n) for n, url in enumerate(self.urls)]

    def choose(self, avoid: frozenset[str] = frozenset(), affinity: str = "") -> PooledServer:
        """The server for the next request.

        Args:
            avoid: servers this request already failed on (tried last, if at all).
            affinity: a key whose requests should stay on one server ("" for none).
        """
        now = self.clock()
        ready = [s for s in self.servers if s.in_rotation(now) and s.url not in avoid]
        if not ready:
            # Nobody in rotation: the one that failed longest ago, preferring untried ones.
            untried = [s for s in self.servers if s.url not in avoid] or list(self.servers)
            return min(untried, key=lambda s: (s.last_failure, s.position))
        least = min(ready, key=lambda s: (s.in_flight, s.latency_s, s.position))
        if affinity:
            url = self._affinity.get(affinity)
            kept = next((s for s in ready if s.url == url), None)
            if kept is not None and kept.in_flight <= least.in_flight + AFFINITY_SLACK:
                return kept
            self._affinity[affinity] = least.url
        return least

    def forget(self, affinity: str) -> None:
        """Drops an affinity key (its drafting is over)."""
        self._affinity.pop(affinity, None)

    def started(self, server: PooledServer) -> None:
        """A request was sent to ``server``."""
        server.in_flight += 1

    def answered(self, server: PooledServer, seconds: float) -> None:
        """``server`` answered in ``seconds``: back in rotation, its latency updated."""
        server.in_flight -= 1
        server.answered += 1
        server.failures = 0
        server.down_until = 0.0
        server.latency_s = (
            seconds
            if server.latency_s == 0.0
            else (1 - LATENCY_WEIGHT) * server.latency_s + LATENCY_WEIGHT * seconds
        )

    def failed(self, server: PooledServer, error: str) -> None:
        """``server`` failed a request: out of rotation for a back-off that doubles."""
        server.in_flight -= 1
        server.failed += 1
        self._take_out(server, error)

    def _take_out(self, server: PooledServer, error: str) -> None:
        now = self.clock()
        server.failures += 1
        server.last_failure = now
        server.last_error = error
        backoff = min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** (server.failures - 1))
        server.down_until = now + backoff

    def released(self, server: PooledServer) -> None:
        """A request to ``server`` ended without a verdict on it (the caller went away)."""
        server.in_flight -= 1

    def probed(self, server: PooledServer, healthy: bool) -> None:
        """A health probe's answer: a server out of rotation whose probe answers is back;
        one in rotation whose probe fails goes out (its requests would fail too)."""
        in_rotation = server.in_rotation(self.clock())
        if healthy and not in_rotation:
            server.down_until = 0.0
            server.failures = 0
        elif not healthy and in_rotation:
            self._take_out(server, "health probe failed")

    def states(self) -> list[ServerState]:
        """Every server's state, in configured order."""
        now = self.clock()
        return [
            ServerState(
                url=s.url,
                in_rotation=s.in_rotation(now),
                in_flight=s.in_flight,
                latency_ms=round(s.latency_s * 1000, 1),
                answered=s.answered,
                failed=s.failed,
                last_error=s.last_error,
            )
            for s in self.servers
        ]


def base_urls(setting: str) -> list[str]:
    """The base URLs of ``EXPOUND_LLM_BASE_URL``: one, or several separated by commas.

    Raises:
        ValueError: An empty entry, or a URL that is not http(s).
    """
    urls = [part.strip().rstrip("/") for part in setting.split(",")]
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"EXPOUND_LLM_BASE_URL: {url!r} is not an http(s) URL")
    return urls
