"""Run the ASGI app with uvicorn, bound to 127.0.0.1 only (put a TLS reverse proxy in front to publish it)."""

from __future__ import annotations

import uvicorn

BIND_HOST = "127.0.0.1"


def ensure_port_free(port: int, option: str = "--port") -> None:
    """Fail at once, with a hint, when ``port`` on 127.0.0.1 is taken (not after minutes of other work).

    Binds and releases the port the way uvicorn will (``SO_REUSEADDR``, so a socket in TIME_WAIT is not a
    false alarm). Port 0 (any free port) always passes.
    """
    import socket

    from skytrace.errors import SkytraceError

    if port == 0:
        return
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((BIND_HOST, port))
        except OSError as exc:
            raise SkytraceError(f"port {port} on {BIND_HOST} is in use ({exc.strerror}): another skytrace service "
                                f"or program is running there; stop it or pick a free port with {option} N"
                                ) from None


def run_server(app, port: int, log_level: str = "warning") -> None:
    config = uvicorn.Config(app, host=BIND_HOST, port=port, log_level=log_level, ws_ping_interval=20,
                            ws_ping_timeout=20, lifespan="on")
    uvicorn.Server(config).run()


class ServerThread:
    """Run the app in a background thread (benchmarks, tests, ``demo``); a context manager, 127.0.0.1 only."""

    def __init__(self, app, port: int = 0, log_level: str = "warning", stop_timeout_s: float = 600.0):
        """``stop_timeout_s``: how long leaving the context waits for the service to stop; its last step stores
        every accepted report, which takes long on a loaded machine (a step of a busy night can take 30 s)."""
        import socket

        if port == 0:
            with socket.socket() as s:
                s.bind((BIND_HOST, 0))
                port = s.getsockname()[1]
        self.port = port
        self.url = f"http://{BIND_HOST}:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host=BIND_HOST, port=port, log_level=log_level,
                                                    lifespan="on", ws_ping_interval=None))
        self._thread = None
        self.stop_timeout_s = stop_timeout_s

    def __enter__(self) -> ServerThread:
        import threading
        import time

        from skytrace.errors import SkytraceError

        self._thread = threading.Thread(target=self.server.run, name="skytrace-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise SkytraceError(f"the service did not start on {self.url}")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(self.stop_timeout_s)
            if self._thread.is_alive():
                import logging

                logging.getLogger(__name__).warning("the service on %s did not stop within %.0f s", self.url,
                                                    self.stop_timeout_s)
