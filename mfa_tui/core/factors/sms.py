"""SMS: a 6-digit code sent to the user's phone number (E.164) through the SMS settings."""

from __future__ import annotations

from mfa_tui.core.delivery import masked_phone
from mfa_tui.core.delivery.code_factor import CodeByMessageFactor
from mfa_tui.core.errors import InputError
from mfa_tui.core.factors import FactorEnv
from mfa_tui.core.models import User


class SmsFactor(CodeByMessageFactor):
    type = "sms"
    label = "SMS"
    code_prompt = "Enter the code sent to your phone by text message."
    channel = "sms"
    destination_noun = "phone number"

    def destination(self, user: User) -> str | None:
        return user.phone

    def masked(self, destination: str) -> str:
        return masked_phone(destination)

    def deliver(self, env: FactorEnv, destination: str, code: str) -> None:
        from mfa_tui.core.delivery.sms import send_sms  # httpx: only when sending

        send_sms(env.settings, destination, self.message_text(env, code))

    def test_settings(self, env: FactorEnv, user: User) -> str:
        """Server Settings "Test": a text message to the administrator's own phone number."""
        from mfa_tui.core.delivery.sms import carrier_address, send_sms

        if not user.phone:
            raise InputError(
                "Add a phone number to your own account first: the test sends a text message to it."
            )
        issuer = env.settings["totp.issuer"]
        send_sms(env.settings, user.phone, f"{issuer}: the SMS settings work.")
        if env.settings["sms.mode"] == "carrier":
            return (
                f"A test text message was sent to {user.phone} by email to "
                f"{carrier_address(env.settings, user.phone)}."
            )
        return f"A test text message was sent to {user.phone} through the SMS gateway."
