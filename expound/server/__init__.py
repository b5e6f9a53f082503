"""expound.server."""
