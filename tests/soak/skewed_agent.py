"""``soc`` with the agent's clock running ``OFFSET`` seconds ahead: ``python skewed_agent.py OFFSET agent run ...``.

The soak's clock-skew fault. Only the time the shipper stamps on a batch (``X-Soc-Sent-At``) is
shifted, which is what a host whose clock runs ahead sends; the log lines it tails are written with
the same offset by the load generator, so the events' own timestamps are ahead too.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta


def main() -> None:
    offset = timedelta(seconds=float(sys.argv[1]))
    import agent.shipper

    agent.shipper.utc_now = lambda: datetime.now(UTC) + offset
    sys.argv = ["soc", *sys.argv[2:]]
    from soc_common.cli import main as soc_main

    soc_main()


if __name__ == "__main__":
    main()
