"""``ferry export``: download a Ferry cloud's data, filtered, into local files.

The package is split the ports-and-adapters way (STYLE §1):

- ``source``: the ``PageSource`` port, the filter and the page types, the errors;
- ``client``: the only adapter that imports grpclib (auth, paging, error mapping);
- ``run``: the driver, which pages a source into the writers and checkpoints;
- ``writers`` and ``state``: the output files and the resumable state file;
- ``progress``: the single-line progress bar and the final summary;
- ``cli``: ``register(subparsers)`` for ``actors.cli``.

This module imports nothing, so ``ferry --help`` stays fast; the handler in
``cli`` imports the rest. See ``docs/export.md``.
"""
