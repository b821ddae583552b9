"""Run the simulated upstreams on 127.0.0.1 in a background thread, per test or per process."""

from __future__ import annotations

import atexit
import threading
from types import TracebackType

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .state import SandboxState
from .upstreams import create_upstreams_app, vendors
from .zendesk import (
    SANDBOX_API_EMAIL,
    SANDBOX_API_TOKEN,
    SANDBOX_OAUTH_CLIENT_ID,
    SANDBOX_OAUTH_CLIENT_SECRET,
    SANDBOX_ORDER_FIELD_ID,
    SANDBOX_ZENDESK_APP_ID,
    SANDBOX_ZENDESK_INSTALLATION_ID,
    SANDBOX_ZENDESK_SUBDOMAIN,
    SandboxZendesk,
)

__all__ = [
    "SANDBOX_API_EMAIL",
    "SANDBOX_API_TOKEN",
    "SANDBOX_OAUTH_CLIENT_ID",
    "SANDBOX_OAUTH_CLIENT_SECRET",
    "SANDBOX_ORDER_FIELD_ID",
    "SANDBOX_ZENDESK_APP_ID",
    "SANDBOX_ZENDESK_INSTALLATION_ID",
    "SANDBOX_ZENDESK_SUBDOMAIN",
    "SandboxServer",
    "SandboxZendesk",
    "connector_base_urls",
    "get_sandbox",
    "zendesk_base_url",
]

# serve_forever checks for shutdown this often; the default 0.5 s would make every stop slow.
_POLL_SECONDS = 0.05


class _QuietHandler(WSGIRequestHandler):
    """Skips werkzeug's per-request access log line; errors are still logged."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class SandboxServer:
    """The simulated upstream APIs served over real HTTP on a free 127.0.0.1 port."""

    def __init__(self, state: SandboxState | None = None, port: int = 0) -> None:
        self.state = state if state is not None else SandboxState()
        self.port = port  # 0: any free port
        self._lock = threading.Lock()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> SandboxServer:
        """Bind the port (a free one if it is 0 or taken) and serve in a daemon thread."""
        with self._lock:
            if self._server is None:
                app = create_upstreams_app(self.state)
                try:
                    server = make_server("127.0.0.1", self.port, app, threaded=True,
                                         request_handler=_QuietHandler)
                except (OSError, SystemExit):  # taken (werkzeug exits on it): any free port
                    server = make_server("127.0.0.1", 0, app, threaded=True,
                                         request_handler=_QuietHandler)
                thread = threading.Thread(target=server.serve_forever, args=(_POLL_SECONDS,),
                                          name=f"sandbox-upstreams-{server.port}", daemon=True)
                thread.start()
                self._server, self._thread = server, thread
        return self

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:51234."""
        if self._server is None:
            raise RuntimeError("the sandbox server is not running; call start() first")
        return f"http://127.0.0.1:{self._server.port}"

    @property
    def running(self) -> bool:
        """True between start() and stop()."""
        return self._server is not None

    def stop(self) -> None:
        """Wake delayed or hanging requests, stop serving and close the socket."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        self.state.faults.wake_all()
        self.state.zendesk.faults.wake_all()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


_shared: SandboxServer | None = None
_shared_lock = threading.Lock()


def get_sandbox(port: int = 0, secret: bytes | None = None) -> SandboxServer:
    """The process-wide sandbox the product talks to, started on first use.

    `secret` signs its Zendesk's OAuth tokens: given the same one after a restart, tokens
    the app stored (an admin's connection, agents' sign-ins) keep working.
    """
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = SandboxServer(SandboxState(zendesk_secret=secret), port=port).start()
            atexit.register(_shared.stop)
        return _shared


def connector_base_urls(url: str) -> dict[str, str]:
    """Each simulated connector's base URL on a sandbox server, keyed by connector system."""
    url = url.rstrip("/")
    return {system: f"{url}/{vendor.path}" for system, vendor in vendors().items()}


def zendesk_base_url(url: str) -> str:
    """The simulated Zendesk's base URL on a sandbox server (stands in for https://<sub>.zendesk.com)."""
    return f"{url.rstrip('/')}/zendesk"
