"""``python -m cbcp_sim.cli``: the ``cbcp-sim`` command."""

import sys

from cbcp_sim.cli.main import main

sys.exit(main())
