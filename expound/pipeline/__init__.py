"""The orchestration: the explain pipeline's stages, the record service, their assembly."""
