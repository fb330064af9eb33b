"""rrdev: a local twin of a JWT-verifying API gateway that explains every 401 and 403."""

__version__ = "0.1.0"
