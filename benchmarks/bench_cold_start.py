"""Figure 5 in a fresh process: start, paint the first real screen once, exit.

    python benchmarks/bench_cold_start.py bare
    python benchmarks/bench_cold_start.py mfa --db URL --key-file PATH

``bare`` is a Textual app with a Header, an Input and a Footer that exits after its first paint.
``mfa`` starts mfa-tui the way the ``mfa-tui`` command does: it imports ``mfa_tui.entry.main`` (all
the console script imports) and calls it with ``--db`` and ``--key-file``; the CLI then builds
``MfaTuiApp(Config(...))`` through ``run_console``, which is swapped for the same call with
``headless=True``. The LoginScreen is swapped for a subclass that exits the app once it is the
active screen and has been painted. Both modes import nothing else (no benchmark helpers), so the
parent's wall time from spawn to exit is the cold start: the process ends with ``os._exit`` once
the first screen is painted, without waiting for the console's database worker. Imports happen inside the functions so
that each mode pays only for its own. The last line on stderr is ``peak_rss_kb=N``: VmHWM, this
process's own peak (``ru_maxrss`` would report the parent's RSS if that was larger).
"""

from __future__ import annotations

import os
import sys


def bare() -> None:
    from textual.app import App, ComposeResult
    from textual.widgets import Footer, Header, Input

    class BareApp(App[None]):
        def compose(self) -> ComposeResult:
            yield Header()
            yield Input(placeholder="Username")
            yield Footer()

        def on_mount(self) -> None:
            self.call_after_refresh(painted)

    BareApp().run(headless=True)


def mfa(arguments: list[str]) -> None:
    # The console script imports mfa_tui.entry, then mfa_tui.cli; the real start imports the
    # other three anyway before the login screen is painted.
    import mfa_tui.ui.app as console
    from mfa_tui.core.config import Config
    from mfa_tui.entry import main
    from mfa_tui.ui.screens import login

    class PaintedLoginScreen(login.LoginScreen):
        # Textual calls this in addition to LoginScreen.on_mount (handlers are taken from the MRO).
        def on_mount(self) -> None:
            self.call_after_refresh(self._painted)

        def _painted(self) -> None:
            # call_after_refresh runs once the active screen has no dirty widget left: painted.
            if self.app.screen is self:
                painted()
            else:
                self.set_timer(0.001, lambda: self.call_after_refresh(self._painted))

    def run_console_headless(config: Config) -> None:
        console.MfaTuiApp(config).run(headless=True)

    login.LoginScreen = PaintedLoginScreen  # type: ignore[misc]
    console.run_console = run_console_headless
    main(arguments)


def painted() -> None:
    """The first screen is on: end the process now. The console's worker may still be opening
    the database (imports included), which is not part of the cold start; waiting for it to
    finish at exit would count it."""
    report_peak_rss()
    sys.stdout.flush()
    os._exit(0)


def report_peak_rss() -> None:
    with open("/proc/self/status") as status:
        peak = next((line.split()[1] for line in status if line.startswith("VmHWM:")), "0")
    print(f"peak_rss_kb={peak}", file=sys.stderr)


if __name__ == "__main__":
    try:
        if sys.argv[1:2] == ["bare"]:
            bare()
        elif sys.argv[1:2] == ["mfa"]:
            mfa(sys.argv[2:])  # mfa_tui.entry.main ends with sys.exit
        else:
            sys.exit("usage: bench_cold_start.py bare | mfa --db URL --key-file PATH")
    finally:
        report_peak_rss()  # only reached when the first screen never came
