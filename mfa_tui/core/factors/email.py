"""Email: a 6-digit code sent through the SMTP settings to the user's email address."""

from __future__ import annotations

from mfa_tui.core.delivery import masked_address
from mfa_tui.core.delivery.code_factor import LIFETIME_MINUTES, CodeByMessageFactor
from mfa_tui.core.factors import FactorEnv
from mfa_tui.core.models import User


class EmailFactor(CodeByMessageFactor):
    type = "email"
    label = "Email"
    code_prompt = "Enter the code sent to your email address."
    channel = "email"
    destination_noun = "email address"

    def destination(self, user: User) -> str | None:
        return user.email

    def masked(self, destination: str) -> str:
        return masked_address(destination)

    def deliver(self, env: FactorEnv, destination: str, code: str) -> None:
        from mfa_tui.core.delivery.email import send_email  # smtplib: only when sending

        issuer = env.settings["totp.issuer"]
        send_email(
            env.settings,
            destination,
            f"Your {issuer} code",
            f"{self.message_text(env, code)}\n\n"
            "If you did not try to sign in, someone may know your password: "
            "tell your helpdesk.\n",
        )

    def test_settings(self, env: FactorEnv, user: User) -> str:
        """Server Settings "Test": a message to the administrator, or a login when they have no address."""
        from mfa_tui.core.delivery.email import SmtpSession, send_email

        settings = env.settings
        server = f"{settings['smtp.host']}:{settings['smtp.port']}"
        if not user.email:
            with SmtpSession(settings):
                pass
            return (
                f"Connected to the SMTP server at {server} ({settings['smtp.security']}). "
                "Add an email address to your account to receive a test message."
            )
        send_email(
            settings,
            user.email,
            f"{settings['totp.issuer']} test message",
            "The email settings work: this message was sent from Server Settings.\n"
            f"Codes sent by email are valid for {LIFETIME_MINUTES} minutes.\n",
        )
        return f"A test email was sent to {user.email} through {server}."
