#!/usr/bin/env python3
"""Rendered text for the PaddleOCR benchmark (issue 35): pages for the detector, line crops for the recognizer,
crops (half of them upside down) for the orientation classifier, written as onnxopt data folders (x.npy).

    /usr/bin/python3 bench/ocr/make_ocr_data.py OUT_DIR        (Debian python3-numpy, python3-pil, fonts-dejavu)

OUT_DIR/{det,rec,cls}_{calib,eval,test}/x.npy, preprocessed as PaddleOCR does: the detector's page [3, 640, 480]
normalized with ImageNet's mean and std; the recognizer's line [3, 48, 320] and the classifier's [3, 48, 192]
as (x / 255 - 0.5) / 0.5, the text left-aligned and the rest padded with 0. Calibration, evaluation (the search's
trials) and test (the reported figures) use different seeds, so no figure comes from data anything was tuned on."""
import os
import random
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONTS = [f for f in [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf"] if os.path.exists(f)]
WORDS = ("the quick brown fox jumps over lazy dog model runtime weights quantized integer float layer kernel "
         "channel depthwise invoice total amount date number street city account balance payment receipt "
         "order quantity price item description reference customer address phone email 2026 12 07 31.50 "
         "EUR USD No. Ltd Inc page of section chapter figure table report summary result value error").split()


def words(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def page(rng):
    w, h = 480, 640
    bg = rng.randint(225, 255)
    img = Image.new("RGB", (w, h), (bg, bg, rng.randint(215, 255)))
    d = ImageDraw.Draw(img)
    y = rng.randint(10, 40)
    while y < h - 30:
        size = rng.randint(12, 30)
        font = ImageFont.truetype(rng.choice(FONTS), size)
        ink = rng.randint(0, 90)
        x = rng.randint(10, 60)
        if rng.random() < 0.15:
            d.rectangle([x, y, x + rng.randint(80, 300), y + 2], fill=(ink, ink, ink))
        else:
            d.text((x, y), words(rng, rng.randint(2, 7)), font=font, fill=(ink, ink, ink + rng.randint(0, 40)))
        y += int(size * rng.uniform(1.3, 2.4))
    a = np.asarray(img, dtype=np.float32) / 255.0
    a = (a - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    return a.transpose(2, 0, 1)


def line(rng, width, flip=False):
    size = rng.randint(26, 36)
    font = ImageFont.truetype(rng.choice(FONTS), size)
    text = words(rng, rng.randint(1, 4))
    bg = rng.randint(200, 255)
    ink = rng.randint(0, 80)
    tw = int(font.getlength(text)) + 8
    img = Image.new("RGB", (max(tw, 16), 48), (bg, bg, bg))
    ImageDraw.Draw(img).text((4, (48 - size) // 2 - 2), text, font=font, fill=(ink, ink, ink))
    if flip:
        img = img.rotate(180)
    ratio = img.width / 48
    nw = min(width, max(1, int(round(48 * ratio))))
    img = img.resize((nw, 48), Image.BILINEAR)
    a = (np.asarray(img, dtype=np.float32) / 255.0 - 0.5) / 0.5
    out = np.zeros((48, width, 3), np.float32)
    out[:, :nw] = a
    return out.transpose(2, 0, 1)


def write(folder, arrays):
    os.makedirs(folder, exist_ok=True)
    np.save(os.path.join(folder, "x.npy"), np.stack(arrays).astype(np.float32))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/onnxopt-ocr"
    if not FONTS:
        sys.exit("no TrueType fonts found (apt-get install fonts-dejavu-core fonts-liberation)")
    # calib: ranges and statistics; eval: what the accuracy-aware search measures its trials on (it selects on it);
    # test: only the reported figures, seen by neither.
    for split, seed, pages, lines in [("calib", 1, 16, 64), ("eval", 2, 16, 128), ("test", 3, 16, 128)]:
        rng = random.Random(seed)
        write(f"{out}/det_{split}", [page(rng) for _ in range(pages)])
        write(f"{out}/rec_{split}", [line(rng, 320) for _ in range(lines)])
        write(f"{out}/cls_{split}", [line(rng, 192, flip=k % 2 == 1) for k in range(lines)])
    print(f"wrote {out}/{{det,rec,cls}}_{{calib,eval,test}}")


if __name__ == "__main__":
    main()
