"""``python -m resfam.space`` (and ``torchrun ... -m resfam.space train``): resfam-space."""
import sys

from .cli import main

sys.exit(main())
