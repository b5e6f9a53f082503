"""expound.clients."""
