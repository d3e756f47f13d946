"""``python -m resfam``: resfam-compare."""
import sys

from .comparison.cli import main

sys.exit(main())
