"""Files shipped beside the code: the .tcss styles, found in a wheel or in a source checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent


def styles_dir() -> Path:
    """``mfa_tui/styles`` in an installed wheel (hatch force-include); ``styles/`` in a checkout."""
    installed = _PACKAGE / "styles"
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / "styles"


def stylesheet(name: str = "app.tcss") -> Path:
    return styles_dir() / name
