"""Rasa's 5-fold intent cross-validation on the same folds each time: Rasa shuffles the
folds with numpy's global generator and no seed, so two runs of the same data differ by up
to 0.01. The weighted F1 is in OUT/intent_report.json.
Run: scripts/with-settings .venv/bin/python bench/intent_cv.py [--seed N] [--nlu DIR]
     [--config FILE] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nlu", default="data/nlu")
    parser.add_argument("--config", default="config.yml")
    parser.add_argument("--out", default="results/cv")
    args = parser.parse_args()
    np.random.seed(args.seed)
    random.seed(args.seed)
    from rasa.__main__ import main as rasa

    sys.argv = [
        "rasa", "test", "nlu", "--nlu", args.nlu, "--config", args.config,
        "--cross-validation", "--folds", "5", "--out", args.out,
    ]  # fmt: skip
    try:
        rasa()
    except SystemExit as done:
        if done.code:
            raise
    report = json.loads((Path(args.out) / "intent_report.json").read_text())
    print(f"seed {args.seed}: weighted F1 {report['weighted avg']['f1-score']:.4f}")


if __name__ == "__main__":
    main()
