"""``python -m mxugen``: the command line without the ``mxugen`` script on PATH."""

import sys

from .cli import main

sys.exit(main())
