"""A threaded HTTP server for protocol stand-ins that stays quiet when a client hangs up.

Tests of timeouts and refused certificates hang up on purpose; the standard server would print a
traceback for each, drowning the test output.
"""

from __future__ import annotations

from http.server import ThreadingHTTPServer


class QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that disconnects mid-request is part of the test, not an error."""
