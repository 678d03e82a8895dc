"""The business flows. Importing this package registers every flow's steps."""
from flows import echo

__all__ = ["echo"]
