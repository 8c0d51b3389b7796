"""What ``verify`` reads and answers, shared by the in-process command, the verify service and its
thin client (``verify_client``), so all three say exactly the same thing.

Imported on the client's fast path, before anything heavy: the standard library only.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

# What pam_exec passes: the authtok is at most PAM_MAX_RESP_SIZE bytes.
PAM_MAX_RESP_SIZE = 512
# One request is one JSON line: a username, a code and an actor fit many times over.
MAX_REQUEST_BYTES = 4096
MAX_ANSWER_BYTES = 16384

REFUSED = "Refused: the code was not accepted."
REFUSED_NO_FACTOR = "Refused: a second factor is required but this user has none."
REFUSED_SECOND_QUESTION = "Refused: this factor asks a second question, which PAM cannot pass on."


class CommandFailed(Exception):
    """A command ends with this one-line message and exit code (the CLI prints it)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def read_stdin_line(what: str) -> str:
    line = sys.stdin.readline()
    if not line:
        raise CommandFailed(f"Expected {what} on standard input, but it was empty.", 2)
    return line.rstrip("\r\n")


def pam_request(
    name: str | None, send: bool, environ: Mapping[str, str] | None = None
) -> tuple[str, str, str]:
    """The user, the code and the audit actor for ``verify --pam``.

    pam_exec runs the command with an environment of its own (PAM_USER, PAM_SERVICE, PAM_RHOST,
    …) and, with expose_authtok, writes the authtok and a NUL byte on standard input, then closes
    it; a person testing by hand types a line instead. Both end the code."""
    env = os.environ if environ is None else environ
    if name is not None:
        raise CommandFailed("With --pam the user comes from PAM_USER: leave out NAME.", 2)
    if send:
        raise CommandFailed(
            "--send cannot work with --pam: PAM asks for the code before mfa-tui runs.", 2
        )
    user = env.get("PAM_USER", "").strip()
    if not user:
        raise CommandFailed(
            "PAM_USER is not set: --pam is for pam_exec in a PAM stack (see 'Protecting SSH "
            "logins').",
            2,
        )
    code = sys.stdin.readline(PAM_MAX_RESP_SIZE + 2).split("\0", 1)[0].rstrip("\r\n")
    if not code:
        raise CommandFailed(
            "Expected a code on standard input (the PAM authtok), but it was empty.", 2
        )
    service = env.get("PAM_SERVICE") or "unknown"
    rhost = env.get("PAM_RHOST")
    return user, code, f"pam:{service}@{rhost}" if rhost else f"pam:{service}"


class Outcome(Protocol):
    """What ``MfaService.verify`` returns (``VerifyOutcome``), as far as the answer needs it."""

    accepted: bool
    reason: str
    state: str | None

    @property
    def message(self) -> str: ...


# Sent before the request is read (too many at once): the client may then check in process.
BUSY = "The verify service is busy; try again in a moment."


@dataclass(frozen=True)
class Answer:
    """The exit code and the line on stderr; ``asks_again``: show the line (a second question,
    e.g. a RADIUS Access-Challenge) and verify the next line with ``state``."""

    exit_code: int
    message: str
    asks_again: bool = False
    state: str | None = None

    def encode(self) -> bytes:
        values = {"exit": self.exit_code, "message": self.message}
        if self.asks_again:
            values |= {"asks_again": True, "state": self.state}
        return json.dumps(values, ensure_ascii=False).encode() + b"\n"


def answer_for(outcome: Outcome, *, require: bool, pam: bool, first_round: bool = True) -> Answer:
    if outcome.reason == "challenge" and pam:
        # pam_exec hands over one authtok; it cannot ask the server's second question.
        return Answer(1, REFUSED_SECOND_QUESTION)
    if outcome.reason == "challenge" and first_round:
        return Answer(1, outcome.message, asks_again=True, state=outcome.state)
    if outcome.reason == "unavailable":
        # The provider failed, not the user: exit 3 (not counted against them), with the reason.
        return Answer(3, outcome.message)
    if outcome.reason == "not_required":
        return Answer(1, REFUSED_NO_FACTOR) if require else Answer(0, outcome.message)
    if not outcome.accepted:
        # The same answer for a wrong code, a locked account and an unknown user.
        return Answer(1, REFUSED)
    return Answer(0, outcome.message)


@dataclass(frozen=True)
class Request:
    """One question to the verify service: one line of JSON."""

    user: str
    code: str
    actor: str
    require: bool = False
    pam: bool = False
    state: str | None = None
    first_round: bool = True

    def encode(self) -> bytes:
        return json.dumps(self.__dict__, ensure_ascii=False).encode() + b"\n"

    @classmethod
    def decode(cls, line: bytes) -> Request:
        """Raises ValueError with a sentence saying what is wrong."""
        try:
            values = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ValueError("the request is not one line of JSON") from None
        if not isinstance(values, dict):
            raise ValueError("the request is not a JSON object")
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"the request has an unknown field '{unknown[0]}'")
        for field, kind in (("user", str), ("code", str), ("actor", str)):
            if not isinstance(values.get(field), kind) or not values[field]:
                raise ValueError(f"the request's '{field}' must be a non-empty text")
        for field in ("require", "pam", "first_round"):
            if not isinstance(values.get(field, False), bool):
                raise ValueError(f"the request's '{field}' must be true or false")
        if not isinstance(values.get("state"), str | None):
            raise ValueError("the request's 'state' must be a text or null")
        return cls(**values)


def decode_answer(line: bytes) -> Answer:
    """Raises ValueError when the line is not an answer."""
    values = json.loads(line.decode("utf-8"))
    if not (
        isinstance(values, dict)
        and isinstance(values.get("exit"), int)
        and isinstance(values.get("message"), str)
        and isinstance(values.get("asks_again", False), bool)
        and isinstance(values.get("state"), str | None)
    ):
        raise ValueError("not an answer")
    return Answer(
        values["exit"], values["message"], values.get("asks_again", False), values.get("state")
    )
