"""User-facing errors: one clear line, exit code 2, no traceback."""


class UserError(Exception):
    """A mistake in user input (bad name, value, path); the CLI prints it as one line and exits 2."""


def choices(values) -> str:
    """Format allowed values for an error message."""
    return ", ".join(sorted(str(v) for v in values))
