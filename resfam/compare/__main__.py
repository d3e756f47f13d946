"""``python -m resfam.compare`` (and ``torchrun ... -m resfam.compare``): resfam-compare."""
import sys

from .cli import main

sys.exit(main())
