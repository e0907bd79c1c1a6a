"""``python -m hybrid_tevatron.eval lareqa|captions|miracl|images ...``: see :mod:`hybrid_tevatron.eval.program`."""

import sys

from hybrid_tevatron.errors import quiet_start

quiet_start("the evaluation")

from hybrid_tevatron.eval.program import main  # noqa: E402 (after the interrupt handling: it imports torch)

sys.exit(main())
