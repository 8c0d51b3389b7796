"""The core never imports Textual or the UI (STYLE §1), checked at import time and in the source."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import mfa_tui

CORE = Path(mfa_tui.__file__).parent / "core"
FORBIDDEN_IMPORT = re.compile(r"^\s*(import|from)\s+(textual|mfa_tui\.ui|mfa_tui\.cli)\b", re.M)

PROBE = """
import json, sys
import mfa_tui.core.services.mfa, mfa_tui.core.services.users, mfa_tui.core.demo, mfa_tui.core.schema
print(json.dumps(sorted(sys.modules)))
"""


def test_importing_the_core_loads_no_textual_and_no_ui() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    modules = json.loads(result.stdout)
    assert "mfa_tui.core.services.users" in modules  # the probe really imported the core
    leaked = [
        name
        for name in modules
        if name == "textual" or name.startswith(("textual.", "mfa_tui.ui")) or name == "mfa_tui.cli"
    ]
    assert leaked == []


def test_no_core_source_file_imports_textual_or_the_ui() -> None:
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 10
    offenders = [
        f"{path.relative_to(CORE.parent)}: {match.group(0).strip()}"
        for path in files
        for match in FORBIDDEN_IMPORT.finditer(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_the_pattern_catches_what_it_should() -> None:
    assert FORBIDDEN_IMPORT.search("import textual\n")
    assert FORBIDDEN_IMPORT.search("    from textual.app import App\n")
    assert FORBIDDEN_IMPORT.search("from mfa_tui.ui.app import MfaApp\n")
    assert not FORBIDDEN_IMPORT.search("import textwrap\n")
