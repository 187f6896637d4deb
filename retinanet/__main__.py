"""``python -m retinanet <command>``: the command line, :mod:`retinanet.tools.cli`."""

import sys

from retinanet.tools.cli import main

if __name__ == "__main__":
    sys.exit(main())
