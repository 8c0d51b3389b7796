"""A private FreeRADIUS (the Debian package) for the RADIUS factor tests.

It runs from a minimal configuration written to a temporary directory, on a free loopback port,
in the foreground, owned by the test session: never the system service. Its one client
(127.0.0.1) must send a Message-Authenticator, and every reply carries one (as a Blast-RADIUS
hardened server does), except for the user ``nomac``, whose Access-Accept deliberately lacks it.

Users:
- ``alice`` / ``alice-pass``: Access-Accept (any other password: Access-Reject);
- ``bob``: Access-Reject whatever the password;
- ``carol`` / ``carol-pass``: Access-Challenge "Enter the code we sent to your phone." with a
  State; the second round with that State and ``424242`` is accepted;
- ``nomac`` / ``nomac-pass``: Access-Accept without a Message-Authenticator.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mfa_tui.core.access import Actor
from mfa_tui.core.context import Context
from mfa_tui.core.factors import ChallengeRequired
from mfa_tui.core.services.mfa import MfaService

BINARY = "freeradius"
DICTIONARY_DIR = Path("/usr/share/freeradius")
SECRET = "test-radius-secret-7f3a"
CHALLENGE_STATE = "0x6d66612d747569"  # "mfa-tui"
CHALLENGE_PROMPT = "Enter the code we sent to your phone."
CHALLENGE_CODE = "424242"

RADIUSD_CONF = """\
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = {dir}
sbindir = /usr/sbin
logdir = {dir}
raddbdir = {dir}
radacctdir = {dir}
name = freeradius
confdir = {dir}
modconfdir = {dir}
run_dir = {dir}
db_dir = {dir}
libdir = /usr/lib/freeradius
pidfile = {dir}/radiusd.pid
max_request_time = 5
cleanup_delay = 0
max_requests = 256
hostname_lookups = no

log {{
    destination = stdout
    auth = yes
}}

security {{
    allow_core_dumps = no
    max_attributes = 200
    reject_delay = 0
    status_server = no
}}

thread pool {{
    start_servers = 1
    max_servers = 4
    min_spare_servers = 1
    max_spare_servers = 2
    max_requests_per_server = 0
}}

client test {{
    ipaddr = 127.0.0.1
    secret = {secret}
    require_message_authenticator = yes
}}

modules {{
    pap {{
    }}
    files {{
        filename = {dir}/authorize
    }}
    always ok {{
        rcode = ok
    }}
    always reject {{
        rcode = reject
    }}
    always handled {{
        rcode = handled
    }}
}}

server default {{
    listen {{
        type = auth
        ipaddr = 127.0.0.1
        port = {port}
    }}

    authorize {{
        if (&User-Name == "carol") {{
            if (!&State) {{
                if (&User-Password == "carol-pass") {{
                    update reply {{
                        State := {state}
                        Reply-Message := "{prompt}"
                        Message-Authenticator := 0x00
                    }}
                    update control {{
                        Response-Packet-Type := Access-Challenge
                    }}
                    handled
                }}
                reject
            }}
            if ((&State == {state}) && (&User-Password == "{code}")) {{
                update control {{
                    Auth-Type := Accept
                }}
                ok
            }}
            else {{
                reject
            }}
        }}
        files
        pap
    }}

    authenticate {{
        Auth-Type PAP {{
            pap
        }}
    }}

    post-auth {{
        if (&User-Name != "nomac") {{
            update reply {{
                Message-Authenticator := 0x00
            }}
        }}
        Post-Auth-Type REJECT {{
            update reply {{
                Message-Authenticator := 0x00
            }}
        }}
    }}
}}
"""

AUTHORIZE = """\
alice   Cleartext-Password := "alice-pass"
        Reply-Message = "Welcome, alice."

bob     Auth-Type := Reject

nomac   Cleartext-Password := "nomac-pass"
"""


@dataclass(frozen=True)
class RadiusServer:
    host: str
    port: int
    secret: str
    log: Path


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def silent_udp_port() -> Iterator[int]:
    """A loopback port with a socket bound that never answers (a dead RADIUS server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        yield sink.getsockname()[1]


def start_freeradius() -> Iterator[RadiusServer]:
    binary = shutil.which(BINARY) or (
        f"/usr/sbin/{BINARY}" if os.path.exists(f"/usr/sbin/{BINARY}") else None
    )
    if binary is None or not DICTIONARY_DIR.is_dir():
        pytest.skip("FreeRADIUS is not installed (apt-get install freeradius)")
    directory = Path(tempfile.mkdtemp(prefix="mfa-tui-radius-"))
    port = free_udp_port()
    (directory / "radiusd.conf").write_text(
        RADIUSD_CONF.format(
            dir=directory,
            port=port,
            secret=SECRET,
            state=CHALLENGE_STATE,
            prompt=CHALLENGE_PROMPT,
            code=CHALLENGE_CODE,
        )
    )
    (directory / "authorize").write_text(AUTHORIZE)
    (directory / "dictionary").write_text("")
    log = directory / "radiusd.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [binary, "-f", "-X", "-d", str(directory), "-n", "radiusd"],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        _wait_ready(process, log)
        yield RadiusServer("127.0.0.1", port, SECRET, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(directory, ignore_errors=True)


def _wait_ready(process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if "Ready to process requests" in text:
            return
        if process.poll() is not None:
            pytest.fail(f"FreeRADIUS exited with {process.returncode}:\n{text[-3000:]}")
        time.sleep(0.02)
    pytest.fail(f"FreeRADIUS was not ready within 10 s:\n{log.read_text(errors='replace')[-3000:]}")


def enroll_challenge_user(ctx: Context, name: str) -> None:
    """Configure now for ``name`` (carol), whose server always asks a second question: the first
    passcode brings the prompt, the code after it proves the enrollment."""
    service = MfaService(ctx)
    start = service.begin_enrollment(Actor.cli(), name, "radius")
    with pytest.raises(ChallengeRequired, match=CHALLENGE_PROMPT):
        service.confirm_code(Actor.cli(), start.credential_id, "carol-pass")
    assert service.confirm_code(Actor.cli(), start.credential_id, CHALLENGE_CODE)
    service.activate(Actor.cli(), name, start.credential_id)
