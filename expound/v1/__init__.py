"""Generated protobuf and gRPC code for expound.v1 (make proto); do not edit."""
