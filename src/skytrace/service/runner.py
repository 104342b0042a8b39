"""Run the ASGI app with uvicorn, bound to 127.0.0.1 only (put a TLS reverse proxy in front to publish it)."""

from __future__ import annotations

import uvicorn

BIND_HOST = "127.0.0.1"


def run_server(app, port: int, log_level: str = "warning") -> None:
    config = uvicorn.Config(app, host=BIND_HOST, port=port, log_level=log_level, ws_ping_interval=20,
                            ws_ping_timeout=20, lifespan="on")
    uvicorn.Server(config).run()
