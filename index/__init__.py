"""newsbot's answer engine: corpus loading, indexing and cited answers."""

__version__ = "0.1.0"
