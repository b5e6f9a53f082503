"""The LLM over its OpenAI-compatible HTTP API: one client for drafting and judging."""
