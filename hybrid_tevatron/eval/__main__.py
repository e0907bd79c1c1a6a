"""``python -m hybrid_tevatron.eval lareqa|captions|miracl|images ...``: see :mod:`hybrid_tevatron.eval.program`."""

import sys

from hybrid_tevatron.eval.program import main

sys.exit(main())
