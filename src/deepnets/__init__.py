"""deepnets: the systems of the review "Deep learning" (LeCun, Bengio & Hinton, Nature 2015)."""

__version__ = "0.1.0"


class DeepnetsError(Exception):
    """An error the user can fix (bad input, missing data); printed without a traceback."""
