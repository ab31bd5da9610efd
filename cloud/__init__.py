"""The cloud side, `ferry cloud`: gRPC ingestion and query service and its stores."""
