"""`python -m bench`: the prunebench command line."""

import sys

from bench.cli import main

sys.exit(main())
