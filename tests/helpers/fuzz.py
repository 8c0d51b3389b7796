"""Hypothesis settings for CI: a fixed seed (``derandomize``), bounded examples, no deadline.

Reused fixtures (one database for every example) are deliberate: each example checks invariants
that hold whatever the earlier examples left behind.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings


def fuzz(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
