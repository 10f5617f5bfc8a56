"""Bad input shown in the Dagster UI as one clear sentence, not a stack trace of our internals."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from ssda_model.errors import SSDAInputError


@contextmanager
def input_errors() -> Iterator[None]:
    """Turn an SSDAInputError into a dg.Failure whose description names the file and the problem."""
    try:
        yield
    except SSDAInputError as exc:
        raise dg.Failure(
            description=str(exc), metadata={"file": exc.source, "problem": exc.problem}, allow_retries=False
        ) from None
