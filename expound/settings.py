"""Service settings: the one place that lists every ``EXPOUND_*`` environment variable.

Parsed once, in ``main``, and passed down; nothing reads the environment at import.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Typed configuration of one expound server process."""

    model_config = SettingsConfigDict(env_prefix="EXPOUND_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=50051, ge=0, le=65535)
    model_dir: Path = Path("artifacts/models")
    archive_path: Path = Path("var/archive.sqlite3")
    reflection: bool = False
    max_message_bytes: int = Field(default=1 << 20, ge=1024)
    grace_seconds: float = Field(default=5.0, ge=0)
    default_candidates: int = Field(default=4, ge=1, le=8)
    max_candidates: int = Field(default=8, ge=1, le=16)
    default_seed: int = Field(default=7, ge=1)
    additivity_tolerance: float = Field(default=1e-6, gt=0)
    max_question_chars: int = Field(default=2000, ge=1)
