"""Fleet configuration: fragments and per-part configs, merged and served to robots."""
