"""Reading a server's Prometheus endpoint as a test would: over HTTP, parsed by
prometheus_client's own parser."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

# The sample names each metric type exposes, by suffix.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
    "info": ("_info",),
    "summary": ("", "_sum", "_count", "_created"),
}


@dataclass(frozen=True)
class Scrape:
    """One scrape: every sample, and every name and label the families declare."""

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]
    names: frozenset[str]
    labels: dict[str, frozenset[str]]  # sample name -> label names seen or declared

    def value(self, name: str, **labels: str) -> float:
        """The sample ``name`` with exactly ``labels`` (KeyError if absent)."""
        return self.samples[(name, frozenset(labels.items()))]

    def total(self, name: str, **labels: str) -> float:
        """The sum over samples ``name`` whose labels include ``labels`` (0 if none)."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and wanted <= ls)


def parse(text: str) -> Scrape:
    """Parses Prometheus' text exposition format."""
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    names: set[str] = set()
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for suffix in SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
        for sample in family.samples:
            names.add(sample.name)
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
            for name in (sample.name, family.name):
                labels.setdefault(name, set()).update(sample.labels)
    return Scrape(samples, frozenset(names), {k: frozenset(v) for k, v in labels.items()})


async def scrape(port: int, host: str = "127.0.0.1") -> Scrape:
    """GETs ``/metrics`` and parses it."""
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://{host}:{port}/metrics", timeout=5)
    response.raise_for_status()
    return parse(response.text)


async def eventually(check: object, timeout_s: float = 5.0) -> None:
    """Waits until ``check()`` is true (polling), or fails."""
    assert callable(check)
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)
