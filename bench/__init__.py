"""Benchmarks of expound (`make bench`); not timed tests. See ``bench.run``."""
