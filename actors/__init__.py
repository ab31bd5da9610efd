"""Ferry's robot-side runtime: capture, sync and retention actors and their seams."""
