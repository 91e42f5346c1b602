import torch
from sklearn.linear_model import LogisticRegression

from deepnets.figures.fig1 import fit_separating_net, hidden, predict, two_curves


def test_no_line_separates_the_two_curves_but_the_221_net_does():
    x, y = two_curves()
    linear = LogisticRegression(C=1e4, max_iter=5000).fit(x.numpy(), y.numpy())
    assert linear.score(x.numpy(), y.numpy()) < 0.95
    weights, biases, losses = fit_separating_net(x, y)
    assert [tuple(w.shape) for w in weights] == [(2, 2), (1, 2)]
    assert bool((predict(weights, biases, x) == y.bool()).all())
    assert losses[-1] < 0.5 * losses[0]
    h = hidden(weights, biases, x).numpy()  # in the hidden layer a line does separate them
    assert LogisticRegression(C=1e4, max_iter=5000).fit(h, y.numpy()).score(h, y.numpy()) == 1.0
    assert torch.isfinite(torch.tensor(losses)).all()
