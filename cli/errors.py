"""The one error type a command raises for a mistake a person can fix."""


class UserError(Exception):
    """A message a person can act on; printed without a traceback."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
