"""expound.models."""
