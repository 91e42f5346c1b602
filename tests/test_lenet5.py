import torch

from deepnets.experiments.mnist import CONVNET_DIGITS, LENET5_MNIST, build_lenet5
from deepnets.models.lenet5 import LeNet5


def test_shapes_and_exact_parameter_count():
    model = build_lenet5(LENET5_MNIST.preset("small"))
    maps = model.features(torch.zeros(3, 1, 28, 28))
    assert [tuple(m.shape[1:]) for m in maps] == [
        (6, 28, 28),
        (6, 14, 14),
        (16, 10, 10),
        (16, 5, 5),
        (120,),
        (84,),
        (10,),
    ]
    # C1 6*(25+1) + C3 16*(6*25+1) + F5 400*120+120 + F6 120*84+84 + out 84*10+10
    assert sum(p.numel() for p in model.parameters()) == 61_706
    classic = build_lenet5(LENET5_MNIST.preset("paper"))
    assert classic.variant == "classic"
    # plus a coefficient and a bias per map in S2 (6 maps) and S4 (16 maps)
    assert sum(p.numel() for p in classic.parameters()) == 61_706 + 2 * 6 + 2 * 16


def test_digits_variant_shapes():
    model = build_lenet5(CONVNET_DIGITS.preset("small"), image_size=8)
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_one_backward_pass_gives_every_parameter_a_finite_gradient():
    for variant in ("modern", "classic"):
        torch.manual_seed(0)
        model = LeNet5(variant)
        logits = model(torch.randn(4, 1, 28, 28))
        torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 3])).backward()
        for name, p in model.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), (variant, name)
            assert p.grad.abs().sum() > 0, (variant, name)


def test_classic_subsampling_matches_its_definition():
    model = LeNet5("classic")
    with torch.no_grad():
        model.s2.coefficient.fill_(0.5)
        model.s2.bias.fill_(0.25)
    x = torch.arange(16.0).reshape(1, 1, 4, 4).repeat(1, 6, 1, 1)
    out = model.s2(x)
    # top-left 2x2 block is 0, 1, 4, 5: sum 10, times 0.5, plus 0.25
    assert out[0, 0, 0, 0].item() == 10 * 0.5 + 0.25


def test_distorted_preset_is_a_widened_lenet5():
    model = build_lenet5(LENET5_MNIST.preset("distorted"))
    maps = model.features(torch.zeros(2, 1, 28, 28))
    assert [tuple(m.shape[1:]) for m in maps] == [
        (32, 28, 28),
        (32, 14, 14),
        (64, 10, 10),
        (64, 5, 5),
        (256,),
        (128,),
        (10,),
    ]
    assert len(model.feature_names) == len(maps)
    # C1 32*(25+1) + C3 64*(32*25+1) + F5 1600*256+256 + F6 256*128+128 + out 128*10+10
    assert sum(p.numel() for p in model.parameters()) == 496_138
