"""`python -m kareljax`: the same as the `kareljax` command."""
import sys

from kareljax.cli import main

sys.exit(main())
