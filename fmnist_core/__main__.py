"""`python -m fmnist_core …`: the headless CLI."""

import sys

from fmnist_core.cli import main

sys.exit(main())
