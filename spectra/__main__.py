"""``python -m spectra``: the ``spectra`` command (see :mod:`spectra._cli`)."""

import sys

from spectra._cli import main

if __name__ == "__main__":
    sys.exit(main())
