"""What the test tiers share: store backends, the LLM stub, the vLLM fixture, decision facts."""
