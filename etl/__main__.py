"""``python -m etl``: hand over to the command line."""

import sys

from etl.cli import main

sys.exit(main())
