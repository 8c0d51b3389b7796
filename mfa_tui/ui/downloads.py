"""Files for the person at the console, through Textual's ``App.deliver_text``.

In a browser tab (``mfa-tui serve``) the browser downloads the file. In a terminal it is saved in
the Downloads folder, as a new file only its owner can read (it may hold backup codes); the app
says where when the file is written (``MfaTuiApp`` handles the delivery events named DOWNLOAD).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from platformdirs import user_downloads_path
from textual.app import App

DOWNLOAD = "mfa-tui-download"


def offer_download(app: App[Any], text: str, filename: str, mime_type: str) -> None:
    """Deliver ``text`` as ``filename``; in a terminal, never over an existing file."""
    if app.is_web:
        app.deliver_text(
            io.StringIO(text), save_filename=filename, mime_type=mime_type, name=DOWNLOAD
        )
        return
    try:
        path = _new_private_file(user_downloads_path(), filename)
    except OSError as error:
        app.notify(f"The file was not saved: {error.strerror or error}.", severity="error")
        return
    app.deliver_text(
        io.StringIO(text),
        save_directory=path.parent,
        save_filename=path.name,
        mime_type=mime_type,
        name=DOWNLOAD,
    )


def _new_private_file(folder: Path, filename: str) -> Path:
    """An empty file of mode 0600 named ``filename`` (or ``stem-2.suffix``, …) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    stem, suffix = os.path.splitext(filename)
    for attempt in range(1, 1000):
        path = folder / (filename if attempt == 1 else f"{stem}-{attempt}{suffix}")
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        os.close(descriptor)
        return path
    raise FileExistsError(f"too many files named like {filename} in {folder}")
