"""``python -m planeai.daemon``: run the session daemon (``planeai daemon start`` does this)."""

import sys

from planeai.daemon.server import main

sys.exit(main())
