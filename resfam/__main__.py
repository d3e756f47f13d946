"""``python -m resfam``: resfam-compare."""
import sys

from .compare.cli import main

sys.exit(main())
