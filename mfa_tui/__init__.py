"""mfa-tui: per-user multi-factor authentication administration in the terminal."""

__version__ = "0.1.0"
