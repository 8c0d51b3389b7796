"""The core: data, crypto, OTP and services. It never imports Textual (see tests/core/test_layers.py)."""
