"""Settings, read once at startup (CLI flags over FORETELL_* environment) and passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FORETELL_", frozen=True)

    repository: Path = Field(Path("examples/models"), description="root of owner/name/version/")
    data_dir: Path = Field(Path(".foretell"), description="where the embedded database lives")
    db: str | None = Field(None, description="SQLAlchemy URL; default SQLite in data_dir")
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    max_wait_s: int = Field(60, ge=1, description="upper bound of Prefer: wait=N")
    validate_wait_s: float = Field(
        30.0, ge=0, description="how long Validate-Input waits for a deploying model's schema"
    )
    shutdown_grace_s: float = Field(
        10.0, ge=0, description="how long a stop lets running predictions finish"
    )
    max_reruns: int = Field(
        1, ge=0, description="re-runs of a prediction interrupted by a server stop"
    )
    webhook_allow_private: bool = Field(
        False, description="let webhooks point at private and loopback addresses"
    )

    @property
    def database_url(self) -> str:
        if self.db:
            return self.db
        return f"sqlite:///{(self.data_dir / 'foretell.db').resolve()}"
