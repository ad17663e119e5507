"""Errors a user can cause: each carries one line that says what went wrong and where."""


class UserError(Exception):
    """A problem with the user's input (a file, an option), reported as one line, no traceback."""


class MicrographError(UserError):
    """A micrograph that cannot be read or used."""


class StarError(UserError):
    """A STAR file that cannot be read as picks."""


class MaskError(UserError):
    """A junk mask that cannot be read or does not fit its micrograph."""
