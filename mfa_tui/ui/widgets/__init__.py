"""Reusable Textual widgets of the mfa-tui screens."""
