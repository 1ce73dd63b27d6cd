"""The one exception type for user errors in radvision."""


class RadvisionError(ValueError):
    """A user error (bad path, column, config key, backbone or loss name): the message is one sentence
    that names the problem and the valid choices. The CLI prints it and exits with code 2."""
