"""A bare Flower ClientApp: the same features, model and training, no contract, no hub."""

from pathlib import Path

import pyarrow.parquet as pq
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedpark.contracts import Contract
from fedpark.experiments.features import encode, plan_from_contract
from fedpark.experiments.models import ModelSpec, build_model
from fedpark.experiments.protocol import Normalization
from fedpark.experiments.training import TrainConfig, evaluate, train

app = ClientApp()


def _local(context: Context):  # type: ignore[no-untyped-def]
    config = context.node_config
    contract = Contract.model_validate_json(Path(str(config["contract"])).read_text())
    plan = plan_from_contract(contract, "classification")
    table = pq.read_table(str(config["data-path"]), columns=plan.columns)
    x, y = encode(table, plan, _norm(plan, table))
    cut = int(len(x) * 0.8)
    spec = ModelSpec("mlp", "classification", hidden=(int(context.run_config["hidden"]),) * 2)
    model = build_model(spec, plan.n_features, len(plan.classes or ()))
    return model, x[:cut], y[:cut], x[cut:], y[cut:]


def _norm(plan, table):  # type: ignore[no-untyped-def]
    means = {c: float(table[c].to_numpy().mean()) for c in plan.numeric}
    stds = {c: float(table[c].to_numpy().std()) or 1.0 for c in plan.numeric}
    return Normalization(mean=means, std=stds)


@app.train()
def train_fn(msg: Message, context: Context) -> Message:
    model, x, y, _, _ = _local(context)
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    loss = train(
        model, x, y, "classification", TrainConfig(epochs=2, batch_size=64, learning_rate=0.003)
    )
    content = RecordDict(
        {
            "arrays": ArrayRecord(model.state_dict()),
            "metrics": MetricRecord({"train_loss": loss, "num-examples": len(x)}),
        }
    )
    return Message(content=content, reply_to=msg)


@app.evaluate()
def evaluate_fn(msg: Message, context: Context) -> Message:
    model, _, _, x, y = _local(context)
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    metrics = evaluate(model, x, y, "classification")
    metrics["num-examples"] = len(x)
    return Message(content=RecordDict({"metrics": MetricRecord(metrics)}), reply_to=msg)
