"""The deterministic simulator, `ferry sim`: real actors under simulated time, network, disk."""
