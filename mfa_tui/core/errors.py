"""Errors meant for people: each carries one sentence and the CLI exit code that goes with it."""


class MfaTuiError(Exception):
    """Base class; ``str(error)`` is the sentence shown to the person."""

    exit_code = 1


class Refused(MfaTuiError):
    """A wrong code, a locked account or an unknown user: deliberately the same answer."""

    exit_code = 1


class PermissionDenied(MfaTuiError):
    """The signed-in person may not do this."""

    exit_code = 1


class InputError(MfaTuiError):
    """Bad input or usage: the message says what is wrong and what to do."""

    exit_code = 2


class NotFound(InputError):
    """A named thing (a user, a setting) does not exist."""


class ConflictError(MfaTuiError):
    """Someone else saved the same record first (optimistic locking)."""

    exit_code = 1


class StorageError(MfaTuiError):
    """The database or the secret key cannot be used."""

    exit_code = 3
