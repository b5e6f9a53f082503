"""expound.rankers."""
