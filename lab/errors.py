"""The one error type of the lab: a message a person can act on (the CLI prints it as one line)."""


class LabError(Exception):
    """Something the lab cannot do, said so that a person can fix it."""
