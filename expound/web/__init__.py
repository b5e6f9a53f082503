"""The HTTP/JSON face of expound and its record browser (FastAPI, served beside gRPC)."""
