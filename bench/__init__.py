"""Benchmarks of expound (`make bench`); not timed tests. See ``bench.run``."""

import os

# The servers a benchmark starts (in this process or as `expound serve` children) serve no
# HTTP face unless a section asks: its default port (8080) may be a running server's, and
# two servers of one section would collide on it.
os.environ.setdefault("EXPOUND_HTTP_PORT", "0")
