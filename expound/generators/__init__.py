"""expound.generators."""
