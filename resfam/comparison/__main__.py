"""``python -m resfam.comparison`` (and ``torchrun ... -m resfam.comparison``): resfam-compare."""
import sys

from .cli import main

sys.exit(main())
