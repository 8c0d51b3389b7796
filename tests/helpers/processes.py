"""Real processes started at one moment (a barrier), each answering once on a queue."""

from __future__ import annotations

import multiprocessing
import queue
from collections.abc import Callable, Sequence
from typing import Any

import pytest


def run_at_once(
    module: str,
    target: Callable[..., None],
    arguments: Sequence[tuple[Any, ...]],
    *,
    timeout: float = 90,
) -> list[Any]:
    """Start one process per tuple of ``arguments``: ``target(*args, barrier, results)``.

    ``module`` (the test's ``__name__``) is preloaded by the forkserver so ``target`` imports
    once. Returns what each child put on ``results``; fails the test if one never answers, and
    checks that every child exited cleanly. ``timeout``: seconds to wait for each answer.
    """
    processes = multiprocessing.get_context("forkserver")
    processes.set_forkserver_preload([module])
    barrier = processes.Barrier(len(arguments))
    results = processes.Queue()
    children = [
        processes.Process(target=target, args=(*args, barrier, results)) for args in arguments
    ]
    for child in children:
        child.start()
    answers: list[Any] = []
    try:
        for _ in children:
            answers.append(results.get(timeout=timeout))
    except queue.Empty:
        pytest.fail(f"only {len(answers)} of {len(children)} processes answered: {answers}")
    finally:
        for child in children:
            child.join(30)
            if child.is_alive():
                child.kill()
    assert all(child.exitcode == 0 for child in children), answers
    return answers
