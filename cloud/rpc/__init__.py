"""The cloud's gRPC edge: grpclib handlers that translate messages and call the logic.

``_edge`` authenticates each call and maps domain errors to gRPC status codes
in one place; each ``*_service`` module serves one protobuf service.
"""
