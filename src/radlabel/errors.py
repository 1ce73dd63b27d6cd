"""radlabel's exception types: user errors, and a worker process that died."""


class RadlabelError(ValueError):
    """A user error (bad file, column, schema, option): the message is one sentence that names the
    problem and the valid choices. The CLI prints it and exits with code 2, without a traceback."""


class WorkerDiedError(RadlabelError):
    """A labeling worker process died (killed, out of memory): the machine's problem rather than the input's,
    so the CLI exits with code 1, as for a full disk. A RadlabelError still, so callers catching that see it."""
