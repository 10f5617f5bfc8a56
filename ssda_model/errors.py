"""The one error type the method raises for bad input, so callers can show it as one line."""


class SSDAInputError(ValueError):
    """Input a biologist can fix: the message names the file, the field and what was expected."""

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        super().__init__(f"{source}: {problem}")


class SSDAInputWarning(UserWarning):
    """Input that is usable but probably not what the user meant (e.g. negative log-expression)."""
