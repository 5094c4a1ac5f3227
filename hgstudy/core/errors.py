"""The one exception type for user-facing failures: the CLI prints its message and exits 2."""


class UserError(Exception):
    """Something the user can fix (a bad parameter, a missing or corrupt file); the message says how."""
