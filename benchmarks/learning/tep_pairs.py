"""TEP park setting: why pooling everyone's rows stops short. The centralized model of
``tep_diagnosis.py`` (seed 0, the same model, training and standardization), scored per
(operating mode, class) pair of the test set, split into the pairs some plant has seen (a
fault in a mode a plant ran it in, and normal operation) and the pairs no plant has seen.

    python benchmarks/learning/tep_pairs.py --data PLANTS [--normalization factory]

``PLANTS``: the folder ``fedpark data tep`` (or ``tep_diagnosis.py``'s scratch folder) holds,
with ``plants.json`` and ``test/tep.parquet``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from tep_diagnosis import open_study

from fedpark.experiments.features import model_arrays
from fedpark.experiments.training import TrainConfig, train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--normalization", choices=("pooled", "factory"), default="pooled")
    parser.add_argument("--epochs", type=int, default=10, help="as tep_diagnosis' 10 rounds")
    args = parser.parse_args(argv)
    plants = json.loads((args.data / "plants.json").read_text())
    study = open_study(args.data, [p["name"] for p in plants], args.normalization)
    parts = [study.train_arrays(p["name"]) for p in plants]
    x, y = np.concatenate([a for a, _ in parts]), np.concatenate([b for _, b in parts])
    model = study.new_model(0)
    for epoch in range(args.epochs):  # the centralized arm's blocks, seeded the same way
        config = TrainConfig(
            epochs=1,
            batch_size=study.train.batch_size,
            learning_rate=study.train.learning_rate,
            seed=epoch,
        )
        train(model, x, y, "classification", config)
    model.eval()
    test = pq.read_table(args.data / "test" / "tep.parquet")
    classes = list(study.plan.classes or ())
    rates: dict[bool, list[float]] = {True: [], False: []}
    for plant in plants:
        rows = test.filter(pc.equal(test["operating_mode"], plant["mode"]))
        # the statistics the plant's ClientApp takes (the pooled ones unless 'factory')
        norm = study.norm_of(plant["name"])
        tx, ty, _ = model_arrays(rows, study.plan, norm, study.model.window)
        with torch.no_grad():
            predicted = model(torch.from_numpy(tx)).argmax(1).numpy()
        for index, fault in enumerate(classes):
            mask = ty == index
            if mask.any():
                seen = fault == 0 or any(
                    fault in q["faults"] and q["mode"] == plant["mode"] for q in plants
                )
                rates[seen].append(float((predicted[mask] == index).mean()))
    for seen, values in ((True, rates[True]), (False, rates[False])):
        print(
            f"{'seen' if seen else 'unseen'} (mode, class) pairs: {len(values)}, "
            f"mean classification rate {100 * statistics.fmean(values):.1f} %"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
