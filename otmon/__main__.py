"""`python -m otmon`."""

import sys

from otmon.cli import main

sys.exit(main())
