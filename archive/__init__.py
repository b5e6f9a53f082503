"""expound.archive."""
