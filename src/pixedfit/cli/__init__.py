"""The ``pixedfit`` command line (``python -m pixedfit.cli`` runs it too).

* :mod:`~pixedfit.cli.main` — the parser, the entry point :func:`main` and the commands
  ``demo``, ``run``, ``filters`` and ``instruments``
* :mod:`~pixedfit.cli.fit` — ``models generate`` and ``fit`` (catalogue fits)

Each sub-command imports its modules when it runs, so ``pixedfit --help`` loads none of
the science stack.
"""

from __future__ import annotations

from .main import build_parser, main, user_message

__all__ = ["build_parser", "main", "user_message"]
