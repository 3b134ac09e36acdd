"""``python -m xavinit``."""

import sys

from xavinit.cli import main

sys.exit(main())
