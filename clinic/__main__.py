"""`python -m clinic`: the staff's command line, under the name the README documents.

The commands live in `entrypoints.cli`, which wires the core to the Graph API sender;
this launcher is the one module of the package that reaches outside it.
"""

import sys

from entrypoints.cli import main

sys.exit(main())
