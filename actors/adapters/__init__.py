"""Production adapters for the ports in ``actors.ports``."""
