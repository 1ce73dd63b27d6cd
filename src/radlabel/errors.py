"""The one exception type for user errors in radlabel."""


class RadlabelError(ValueError):
    """A user error (bad file, column, schema, option): the message is one sentence that names the
    problem and the valid choices. The CLI prints it and exits with code 2, without a traceback."""
