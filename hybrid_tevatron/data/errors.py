"""The data layer's one error: invalid or inconsistent input data, reported in one line that names the file (and the
line or dataset row) and the id."""

from hybrid_tevatron.errors import HybridTevatronError


class DataError(HybridTevatronError, ValueError):
    """Invalid or inconsistent training data; the message names the file/line (or dataset row) and the id."""
