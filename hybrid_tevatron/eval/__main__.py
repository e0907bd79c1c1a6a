"""``python -m hybrid_tevatron.eval lareqa|miracl|captions ...``: see :mod:`hybrid_tevatron.eval.program`."""

import sys

from hybrid_tevatron.eval.program import main

sys.exit(main())
