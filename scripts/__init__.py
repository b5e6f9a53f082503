"""Developer scripts (run from the repository root); importable for the tests and bench."""
