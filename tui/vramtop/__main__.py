"""``python -m vramtop``. Importing this module runs nothing: only running it does."""

import sys

from vramtop.cli import main

if __name__ == "__main__":
    sys.exit(main())
