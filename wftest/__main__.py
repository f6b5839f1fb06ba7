"""``python -m wftest``: the same as the ``wftest`` command."""

import sys

from wftest.cli import main

sys.exit(main())
