"""Settings the pipeline and drafting tests share: a pipeline drafting four candidates,
and jump-forward drafting against a generator in process."""

from __future__ import annotations

from expound.generators.drafting import DraftingConfig
from expound.pipeline.explain import PipelineConfig

PIPELINE = PipelineConfig(
    service_version="test",
    default_candidates=4,
    max_candidates=4,
    default_seed=7,
    additivity_tolerance=1e-6,
    max_question_chars=2000,
)
JUMP = DraftingConfig(
    mode="constrained", decoding="jump", max_tokens=200, temperature=0.8, timeout_s=5.0
)
