"""``python -m cbcp_sim.cli``: the ``cbcp-sim`` command."""

import sys

from cbcp_sim.cli import main

sys.exit(main())
