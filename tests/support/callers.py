"""The caller of reads that tests make outside any call (the access log names it)."""

from expound.pipeline.records import Caller

TEST_CALLER = Caller("test", "test-request")
