"""`python -m openphone_sandbox` == `openphone-sandbox`."""

import sys

from .cli import main

sys.exit(main())
