"""Hostile codes for ``MfaService.verify`` on SQLite and PostgreSQL (hypothesis, fixed seed).

Whatever string arrives as a code (from ``mfa-tui verify``, the login prompt, PAM), ``verify``
answers with a ``VerifyOutcome`` and never raises, and garbage is never accepted: not for an
authenticator (TOTP) user, a local Yubikey user (including well-formed OTPs that carry the user's
own public id with a forged body) or a backup code. Afterwards the real codes still work, so the
garbage consumed nothing.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mfa_tui.core.access import Actor
from mfa_tui.core.clock import FixedClock
from mfa_tui.core.context import Context
from mfa_tui.core.services.mfa import MfaService, VerifyOutcome
from mfa_tui.core.services.settings_store import SettingsStore
from mfa_tui.core.services.users import UserService
from tests.core.test_factor_yubikey import enroll_local
from tests.core.test_mfa_service import code_now, enroll
from tests.helpers.fuzz import fuzz
from tests.helpers.yubico_standin import SimulatedYubikey

EXAMPLES = 120
FUZZ = fuzz(EXAMPLES)
MODHEX = "cbdefghijklnrtuv"


def hostile_codes(public_id: str) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=60),  # any Unicode, NUL and lone surrogates included
        st.text(alphabet="0123456789 -\t", max_size=12),  # code-shaped
        st.text(alphabet=MODHEX, min_size=32, max_size=48),  # OTP-shaped
        st.text(alphabet=MODHEX, min_size=32, max_size=32).map(lambda body: public_id + body),
        st.sampled_from(
            ["push", "PUSH", "", " ", "\x00" * 6, "１２３４５６", "٣٤٥٦٧٨", "0" * 10_000]
        ),
    )


@pytest.mark.parametrize("target", ["alice", "bob"])
def test_garbage_never_raises_and_is_never_accepted(
    ctx: Context, clock: FixedClock, cli_actor: Actor, target: str
) -> None:
    SettingsStore(ctx).set_many(
        cli_actor,
        {"mfa.supported": "totp,yubikey", "yubikey.mode": "local", "lockout.attempts": "100"},
    )
    UserService(ctx).create(cli_actor, "alice")
    secret = enroll(ctx, clock, cli_actor, "alice")
    backup = MfaService(ctx).generate_backup_codes(cli_actor, "alice")
    key = SimulatedYubikey()
    enroll_local(ctx, key, "bob")
    clock.advance(seconds=30)
    service = MfaService(ctx)
    reasons: dict[str, int] = {}

    @FUZZ
    @given(code=hostile_codes(key.public_id))
    def check(code: str) -> None:
        outcome = service.verify(target, code)
        assert isinstance(outcome, VerifyOutcome)
        assert not outcome.accepted, (target, code)
        assert outcome.reason in ("wrong_code", "locked"), outcome
        reasons[outcome.reason] = reasons.get(outcome.reason, 0) + 1
        if outcome.reason == "locked":
            service.unlock(cli_actor, target)

    check()
    service.unlock(cli_actor, "alice")
    service.unlock(cli_actor, "bob")
    assert service.verify("alice", code_now(secret, clock)).method == "totp"
    assert service.verify("alice", backup[0]).method == "backup_code"
    assert service.verify("bob", key.touch()).method == "yubikey"
    with ctx.db.read() as session:
        assert ctx.audit.verify(session).ok
    print(f"\nverify fuzz ({target}): {EXAMPLES} codes, {reasons}")
