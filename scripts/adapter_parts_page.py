"""The page's face editor with each photo adapter, at its 384 px display size (shipped models).

    .venv/bin/python scripts/adapter_parts_page.py --out docs/img/adapter-parts-page.png

Encodes one photo with POST /encode at size 384 three times (no adapter, ``adapter_parts=bn``,
``adapter_parts=bn+last``), edits each with POST /edit (Smiling +1.5; Smiling +1.5 with Male
locked), prints each reconstruction's quality and adapter length and writes a 3 x 3 grid: a row
per adapter (none, BatchNorm only, BatchNorm and last convolution), the reconstruction and its
two edits, each at the size the page shows it.
"""

from __future__ import annotations

import argparse
import base64
import io
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: the display size of the page's face editor (api/web/static/state.js FACE_SIZE)
SIZE = 384
ROWS = ({"adapter": "false"}, {"adapter_parts": "bn"}, {"adapter_parts": "bn+last"})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="The grid (PNG).")
    ap.add_argument("--photo", type=Path,
                    default=REPO.parent / "shared/data/celeba-subset/img_align_celeba/184428.jpg",
                    help="The photo encoded (scripts/screenshots.py's upload photo).")
    ap.add_argument("--tile", type=int, default=SIZE, help="Each face's size in the grid.")
    args = ap.parse_args()
    from fastapi.testclient import TestClient
    from PIL import Image

    from api.app import create_app
    from api.settings import load_settings
    from tlgan_base.artifact import write_bytes_atomic

    photo = args.photo.read_bytes()
    grid = Image.new("RGB", (3 * args.tile, len(ROWS) * args.tile), "white")
    with TestClient(create_app(load_settings())) as client:
        for i, form in enumerate(ROWS):
            resp = client.post("/encode", files={"image": (args.photo.name, photo, "image/jpeg")},
                               data={"size": str(SIZE), **form})
            resp.raise_for_status()
            enc = resp.json()
            print(form, enc["quality"], "adapter characters:", len(enc["adapter"] or ""))
            images = [enc["image"]]
            for locked in ([], ["Male"]):
                body = {"latent": enc["latent"], "moves": {"Smiling": 1.5}, "locked": locked,
                        "size": SIZE, "adapter": enc["adapter"]}
                edited = client.post("/edit", json=body)
                edited.raise_for_status()
                images.append(edited.json()["image"])
            for j, b64 in enumerate(images):
                face = Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB")
                grid.paste(face.resize((args.tile, args.tile), Image.Resampling.LANCZOS),
                           (j * args.tile, i * args.tile))
    buf = io.BytesIO()
    grid.save(buf, "PNG", optimize=True)
    write_bytes_atomic(args.out, buf.getvalue())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
