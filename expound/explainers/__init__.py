"""expound.explainers."""
