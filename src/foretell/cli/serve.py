"""Run the API under uvicorn with rich logging; SIGTERM drains, SIGKILL loses nothing durable."""

from __future__ import annotations

import logging

import uvicorn
from rich.logging import RichHandler

from foretell.api.app import create_app
from foretell.config import Settings


def serve_forever(settings: Settings) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(message)s", handlers=[RichHandler(show_path=False)]
    )
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        # Connections get the predictions' grace plus a margin to send their answers.
        timeout_graceful_shutdown=int(settings.shutdown_grace_s) + 5,
    )
    uvicorn.Server(config).run()
