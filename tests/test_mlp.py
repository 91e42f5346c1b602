import pytest
import torch

from deepnets.experiments.mnist import MLP_MNIST, build_mlp
from deepnets.models.mlp import MLP, explicit_forward_backward


def _weights(model):
    return ([l.weight.detach() for l in model.layers], [l.bias.detach() for l in model.layers])


def test_shapes_and_exact_parameter_count():
    model = build_mlp(MLP_MNIST.preset("small"))
    assert model(torch.zeros(5, 1, 28, 28)).shape == (5, 10)
    # 784*800 + 800 + 800*800 + 800 + 800*10 + 10
    assert sum(p.numel() for p in model.parameters()) == 1_276_810
    paper = build_mlp(MLP_MNIST.preset("paper"))
    assert sum(p.numel() for p in paper.parameters()) == 784 * 800 + 800 + 800 * 10 + 10


def test_one_backward_pass_gives_every_parameter_a_finite_gradient():
    model = build_mlp(MLP_MNIST.preset("small"))
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    model.loss(model(x), y).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


CASES = [
    (a, l, out)
    for a in ("relu", "tanh", "logistic")
    for l in ("cross_entropy", "squared_error")
    for out in (1, 4)
    if not (l == "squared_error" and out == 1)
]


@pytest.mark.parametrize("activation, loss, n_out", CASES)
def test_explicit_backprop_equals_autograd(activation, loss, n_out):
    torch.manual_seed(0)
    model = MLP((6, 5, 7, n_out), activation, loss).double()
    x = torch.randn(9, 6, dtype=torch.float64)
    y = torch.randint(0, max(2, n_out), (9,))
    reference = model.loss(model(x), y)
    reference.backward()
    weights, biases = _weights(model)
    error, grad_w, grad_b = explicit_forward_backward(weights, biases, x, y, activation, loss)
    assert error.item() == pytest.approx(reference.item(), rel=1e-12)
    for layer, gw, gb in zip(model.layers, grad_w, grad_b):
        torch.testing.assert_close(gw, layer.weight.grad, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(gb, layer.bias.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "activation, loss",
    [("tanh", "cross_entropy"), ("logistic", "squared_error"), ("relu", "cross_entropy")],
)
def test_explicit_backprop_matches_float64_finite_differences(activation, loss):
    torch.manual_seed(1)
    sizes = (4, 6, 3)
    weights = [torch.randn(b, a, dtype=torch.float64) for a, b in zip(sizes[:-1], sizes[1:])]
    biases = [torch.randn(b, dtype=torch.float64) * 0.1 for b in sizes[1:]]
    x, y = torch.randn(5, 4, dtype=torch.float64), torch.randint(0, 3, (5,))
    _, grad_w, grad_b = explicit_forward_backward(weights, biases, x, y, activation, loss)
    eps = 1e-6
    for params, grads in ((weights, grad_w), (biases, grad_b)):
        for p, g in zip(params, grads):
            numeric = torch.zeros_like(p)
            flat, nflat = p.view(-1), numeric.view(-1)
            for i in range(flat.numel()):
                old = flat[i].item()
                flat[i] = old + eps
                plus = explicit_forward_backward(weights, biases, x, y, activation, loss)[0]
                flat[i] = old - eps
                minus = explicit_forward_backward(weights, biases, x, y, activation, loss)[0]
                flat[i] = old
                nflat[i] = (plus - minus) / (2 * eps)
            torch.testing.assert_close(g, numeric, rtol=1e-5, atol=1e-7)


def test_gradcheck_agrees_with_autograd_through_the_module():
    model = MLP((3, 4, 2), "tanh").double()
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inp: model(inp), (x,))


def test_short_run_learns_a_nonlinear_task():
    """XOR-like quadrants: no linear model gets above ~50%; the MLP must exceed 95%."""
    torch.manual_seed(0)
    x = torch.rand(512, 2) * 2 - 1
    y = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).long()
    model = MLP((2, 16, 2), "tanh")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    for _ in range(300):
        optimizer.zero_grad()
        model.loss(model(x), y).backward()
        optimizer.step()
    accuracy = (model(x).argmax(1) == y).float().mean().item()
    assert accuracy > 0.95
