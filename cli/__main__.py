"""`python -m cli ARGS`: the same as `distillery ARGS`."""

import sys

from cli.main import main

sys.exit(main())
