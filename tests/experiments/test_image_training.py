"""NIID-Bench's simple CNN, and local training of images with SGD or Adam."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from fedpark.experiments.models import SimpleCNN
from fedpark.experiments.training import TrainConfig, evaluate, make_optimizer, train


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


def stripes(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images [n, 1, 28, 28]: class 0 has a bright horizontal bar, class 1 a vertical one,
    at random positions, in noise."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 0.3, size=(n, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 2, size=n)
    for i, at in enumerate(rng.integers(4, 24, size=n)):
        if y[i] == 0:
            x[i, 0, at : at + 3, :] = 1.0
        else:
            x[i, 0, :, at : at + 3] = 1.0
    return x, y


def test_simple_cnn_has_the_papers_layers() -> None:
    model = SimpleCNN()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (1, 6, (5, 5)),
        (6, 16, (5, 5)),
    ]
    assert [(f.in_features, f.out_features) for f in linears] == [
        (16 * 4 * 4, 120),
        (120, 84),
        (84, 10),
    ]
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 2
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == 4
    # conv 6*(25+1) + 16*(6*25+1) + fc 256*120+120 + 120*84+84 + 84*10+10
    assert sum(p.numel() for p in model.parameters()) == 44_426
    batch = torch.zeros(3, 1, 28, 28)
    assert model(batch).shape == (3, 10)
    assert model(batch.reshape(3, 784)).shape == (3, 10)  # flat pixels are reshaped


def test_cnn_learns_images_with_sgd_momentum() -> None:
    x, y = stripes(600)
    x_test, y_test = stripes(300, seed=1)
    torch.manual_seed(0)
    model = SimpleCNN(n_classes=2)
    before = evaluate(model, x_test, y_test, "classification")["accuracy"]
    config = TrainConfig(
        epochs=3, batch_size=32, learning_rate=0.05, optimizer="sgd", momentum=0.9, seed=1
    )
    loss = train(model, x, y, "classification", config)
    after = evaluate(model, x_test, y_test, "classification")
    assert loss < 0.5  # from ln 2 = 0.69 at chance
    assert after["accuracy"] > 0.95 > before + 0.2


def test_optimizer_choice_and_defaults() -> None:
    model = SimpleCNN()
    default = make_optimizer(model, TrainConfig())
    assert isinstance(default, torch.optim.Adam)  # unchanged default for factory models
    assert default.param_groups[0]["lr"] == 1e-3 and default.param_groups[0]["weight_decay"] == 0
    sgd = make_optimizer(
        model, TrainConfig(optimizer="sgd", learning_rate=0.01, momentum=0.9, weight_decay=1e-5)
    )
    assert isinstance(sgd, torch.optim.SGD)
    group = sgd.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.01, 0.9, 1e-5)
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        TrainConfig(optimizer="rmsprop")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must not be negative"):
        TrainConfig(momentum=-0.1)


def test_momentum_changes_the_trajectory_and_seed_fixes_it() -> None:
    x, y = stripes(128)

    def trained(momentum: float) -> list[torch.Tensor]:
        torch.manual_seed(0)
        model = SimpleCNN(n_classes=2)
        config = TrainConfig(learning_rate=0.01, optimizer="sgd", momentum=momentum)
        train(model, x, y, "classification", config)
        return [p.detach().clone() for p in model.parameters()]

    plain, again, heavy = trained(0.0), trained(0.0), trained(0.9)
    assert all(torch.equal(a, b) for a, b in zip(plain, again, strict=True))
    assert not all(torch.allclose(a, b) for a, b in zip(plain, heavy, strict=True))


def test_fedprox_term_keeps_sgd_closer_to_the_start() -> None:
    x, y = stripes(256)

    def drift(mu: float) -> float:
        torch.manual_seed(0)
        model = SimpleCNN(n_classes=2)
        start = [p.detach().clone() for p in model.parameters()]
        config = TrainConfig(
            epochs=2, learning_rate=0.05, optimizer="sgd", momentum=0.9, proximal_mu=mu
        )
        train(model, x, y, "classification", config)
        with torch.no_grad():
            return sum(
                float(((p - s) ** 2).sum()) for p, s in zip(model.parameters(), start, strict=True)
            )

    assert drift(1.0) < drift(0.0)


def test_evaluate_in_batches_equals_one_pass() -> None:
    x, y = stripes(4500)  # more rows than one evaluation batch
    torch.manual_seed(0)
    model = SimpleCNN(n_classes=2)
    metrics = evaluate(model, x, y, "classification")
    with torch.no_grad():
        whole = model(torch.as_tensor(x))
    expected = float((whole.argmax(1).numpy() == y).mean())
    assert metrics["accuracy"] == pytest.approx(expected)
    assert metrics["loss"] == pytest.approx(
        float(nn.functional.cross_entropy(whole, torch.as_tensor(y))), rel=1e-5
    )
