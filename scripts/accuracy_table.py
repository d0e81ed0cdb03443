"""Markdown table of `layerseg bench accuracy` summaries side by side.

    python scripts/accuracy_table.py "default200 / default=acc/default200_default.json" \
        "default200 / classical=acc/default200_classical.json" ...

Each argument is ``LABEL=SUMMARY.json``; one row per argument: frames, Dice per layer, the mean
Dice over dermis, fat, SMAS and muscle (the four layers the project's targets name), dermis
thickness MAE (mm) and order violations. Layers absent from a set show as a dash.
"""

from __future__ import annotations

import json
import sys

LAYERS = ("epidermis", "dermis", "fat", "smas", "deep_fat", "muscle", "bone")
CORE = ("dermis", "fat", "smas", "muscle")


def row(label: str, summary: dict) -> str:
    lay = summary.get("layers", {})

    def dice(name):
        v = lay.get(name, {}).get("dice")
        return None if v is None or v != v else float(v)

    cells = [label, str(summary.get("frames", "?"))]
    cells += ["-" if dice(n) is None else f"{dice(n):.3f}" for n in LAYERS]
    core = [dice(n) for n in CORE if dice(n) is not None]
    cells.append(f"{sum(core) / len(core):.3f}" if core else "-")
    mae = lay.get("dermis", {}).get("thickness_mae_mm")
    cells.append("-" if mae is None else f"{mae:.3f}")
    cells.append(str(summary.get("order_violations", "?")))
    return "| " + " | ".join(cells) + " |"


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    head = ["set / model", "frames", *LAYERS, "mean 4", "dermis MAE mm", "order viol."]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for arg in argv:
        label, _, path = arg.rpartition("=")
        with open(path, encoding="utf-8") as f:
            print(row(label or path, json.load(f)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
