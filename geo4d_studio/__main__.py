"""`python -m geo4d_studio` is the same as the `geo4d-studio` command."""

import sys

from geo4d_studio.cli import main

sys.exit(main())
