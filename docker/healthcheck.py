"""Container health check: exit 0 when ``GET /readyz`` answers 200, else 1.

Used by the image's ``HEALTHCHECK`` (the slim image has no curl). The port is ``TLGAN_PORT``
(default 8000); proxies from the environment are ignored (the service is on loopback).
"""

from __future__ import annotations

import os
import sys
import urllib.request


def main() -> int:
    """Probe /readyz once; print why when unhealthy."""
    url = f"http://127.0.0.1:{os.environ.get('TLGAN_PORT', '8000')}/readyz"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=4) as response:
            status = int(response.status)
    except (OSError, ValueError) as exc:  # HTTPError (503) is an OSError too
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
