"""Make the view-recording helpers (psi_views.py) importable from the PSI tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
