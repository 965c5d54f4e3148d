"""assets of the code location; definitions.py merges `defs` from here."""

import dagster as dg

defs = dg.Definitions()
