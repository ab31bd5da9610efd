"""Sync: uploads finished files to the cloud exactly once, then deletes them (issue 5).

``fsm`` is the pure per-file state machine and ``backoff`` its retry policy;
the Trio shell around them lives in the other modules of this package.
"""
