"""Disconnect storm against any running server: how many faces it renders for clients gone.

    python bench/storm.py --url http://127.0.0.1:8000 [--clients 1000] [--settle 5]

``--clients`` raw connections each send one ``POST /edit`` (a random latent, one move) and
close at once, never reading the answer. The faces the server renders for them are read from
its ``tlgan_faces_rendered_total`` metric before and after (after ``--settle`` seconds), so
the script works against any version of the service, e.g. to compare one commit with
another. ``bench/fairness.py`` runs the same storm with live and heavy clients beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import httpx
import numpy as np


def rendered(url: str) -> float:
    """The server's ``tlgan_faces_rendered_total``."""
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        if line.startswith("tlgan_faces_rendered_total "):
            return float(line.split()[1])
    raise SystemExit("storm: the server exports no tlgan_faces_rendered_total")


async def hang_up(url: str, body: dict[str, object]) -> None:
    """Send one request on a raw connection and close it without reading."""
    host, port = url.removeprefix("http://").split(":")
    data = json.dumps(body).encode()
    head = (f"POST /edit HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode()
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(head + data)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="http://HOST:PORT of a running server")
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--settle", type=float, default=5.0,
                    help="seconds to let the server finish before reading the metric")
    args = ap.parse_args(argv)
    url = args.url.rstrip("/")
    size = len(httpx.post(f"{url}/generate", json={"seed": 0, "with_features": False},
                          timeout=60).json()["faces"][0]["latent"])
    rng = np.random.default_rng(0)
    bodies = [{"latent": [float(x) for x in rng.standard_normal(size)],
               "moves": {"Smiling": 1.0}, "with_features": False} for _ in range(args.clients)]
    before = rendered(url)

    async def storm() -> None:
        await asyncio.gather(*(hang_up(url, b) for b in bodies))

    asyncio.run(storm())
    time.sleep(args.settle)
    print(f"faces rendered for {args.clients} departed clients: {rendered(url) - before:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
