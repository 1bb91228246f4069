"""A bare Flower ServerApp: FedAvg over the same MLP, timing each round, nothing else."""

import json
import time
from pathlib import Path

import torch
from flwr.app import ArrayRecord, Context
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from fedpark.experiments.models import ModelSpec, build_model

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    config = context.run_config
    torch.manual_seed(0)
    spec = ModelSpec("mlp", "classification", hidden=(int(config["hidden"]),) * 2)
    model = build_model(spec, int(config["features"]), int(config["classes"]))
    stamps = [time.time()]

    def end_of_round(server_round: int, arrays: ArrayRecord) -> None:
        if server_round:
            stamps.append(time.time())

    strategy = FedAvg(min_train_nodes=2, min_evaluate_nodes=2, min_available_nodes=2)
    strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(model.state_dict()),
        num_rounds=int(config["rounds"]),
        timeout=300,
        evaluate_fn=end_of_round,
    )
    Path(str(config["timings"])).write_text(json.dumps(stamps))
