"""What every request handler needs: the settings and the store, built once by ``create_app``."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from sqlalchemy import Engine

from ductwork.settings import Settings


@dataclass(frozen=True)
class WebOptions:
    secure_cookies: bool = False
    """Send cookies only over HTTPS (set it when the server is behind TLS)."""
    live_poll_ms: int = 1500
    """How often a live page (graph, grid, task) asks for new states."""


@dataclass(frozen=True)
class WebContext:
    settings: Settings
    engine: Engine
    options: WebOptions


def web_context(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.ctx
    return ctx
