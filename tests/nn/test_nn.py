"""tinyface.nn: functional ops against explicit loops and gradcheck, the layers, and Module's bookkeeping."""

import inspect

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinyface import Tensor, gradcheck, manual_seed, nn, no_grad, optim
from tinyface.nn import functional as F
from tinyface.testing import arrays, away_from_zero, distinct, images, leaf

SETTINGS = settings(max_examples=25, deadline=None)


# -- references by explicit loops -------------------------------------------------------------------------------
def conv2d_loops(x, w, b, stride, padding):
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    ho, wo = (h - kh) // stride + 1, (wd - kw) // stride + 1
    out = np.zeros((n, o, ho, wo))
    for i in range(n):
        for f in range(o):
            for y in range(ho):
                for z in range(wo):
                    patch = x[i, :, y * stride : y * stride + kh, z * stride : z * stride + kw]
                    out[i, f, y, z] = np.sum(patch * w[f]) + (0.0 if b is None else b[f])
    return out


def pool_loops(x, k, stride, padding, reduce, pad_value):
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), constant_values=pad_value)
    n, c, h, w = x.shape
    ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
    out = np.zeros((n, c, ho, wo))
    for i in range(n):
        for j in range(c):
            for y in range(ho):
                for z in range(wo):
                    out[i, j, y, z] = reduce(x[i, j, y * stride : y * stride + k, z * stride : z * stride + k])
    return out


@st.composite
def conv_config(draw):
    k = draw(st.integers(1, 3))
    padding = draw(st.integers(0, 1))
    stride = draw(st.integers(1, 2))
    low = max(1, k - 2 * padding)
    n, c, o = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    h, w = draw(st.integers(low, 5)), draw(st.integers(low, 5))
    return (n, c, h, w), (o, c, k, k), stride, padding


@st.composite
def pool_config(draw):
    """kernel, stride (overlapping when smaller than the kernel), padding <= kernel // 2 (as in PyTorch)."""
    k = draw(st.integers(1, 3))
    stride = draw(st.integers(1, 3))
    padding = draw(st.integers(0, k // 2))
    low = max(1, k - 2 * padding)
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(low, 5)), draw(st.integers(low, 5)))
    return shape, k, stride, padding


# -- convolution ---------------------------------------------------------------------------------------------
@SETTINGS
@given(conv_config(), st.booleans(), st.data())
def test_conv2d_against_loops_and_gradcheck(config, with_bias, data):
    x_shape, w_shape, stride, padding = config
    x, w = data.draw(images(*x_shape)), data.draw(arrays(w_shape))
    b = data.draw(arrays((w_shape[0],))) if with_bias else None
    out = F.conv2d(leaf(x), leaf(w), None if b is None else leaf(b), stride=stride, padding=padding)
    np.testing.assert_allclose(out.numpy(), conv2d_loops(x, w, b, stride, padding), rtol=1e-10, atol=1e-12)
    inputs = [leaf(x), leaf(w)] + ([] if b is None else [leaf(b)])
    assert gradcheck(lambda *t: F.conv2d(*t, stride=stride, padding=padding), *inputs)


def test_conv2d_rectangular_kernel_and_tuple_arguments():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 2, 3)), rng.standard_normal(4)
    out = F.conv2d(leaf(x), leaf(w), leaf(b), stride=(2, 1), padding=(1, 0))
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (0, 0)))
    expected = np.zeros(out.shape)
    for y in range(out.shape[2]):
        for z in range(out.shape[3]):
            patch = xp[:, :, 2 * y : 2 * y + 2, z : z + 3]
            expected[:, :, y, z] = np.einsum("nchw,ochw->no", patch, w) + b
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10)
    assert gradcheck(lambda *t: F.conv2d(*t, stride=(2, 1), padding=(1, 0)), leaf(x[:1, :2]), leaf(w[:2, :2]))


def test_conv2d_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="channels"):
        F.conv2d(Tensor(np.ones((1, 2, 4, 4))), Tensor(np.ones((3, 1, 3, 3))))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        F.conv2d(Tensor(np.ones((2, 4, 4))), Tensor(np.ones((3, 2, 3, 3))))
    with pytest.raises(ValueError, match="Conv2d"):
        nn.Conv2d(3, 4, 3)(Tensor(np.ones((1, 2, 5, 5))))


def test_conv2d_layer_uses_stride_padding_and_bias():
    layer = nn.Conv2d(2, 3, 3, stride=2, padding=1, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((2, 2, 5, 5)).astype(np.float32)
    out = layer(Tensor(x))
    assert out.shape == (2, 3, 3, 3) and out.dtype == np.float32
    expected = conv2d_loops(x.astype(np.float64), layer.weight.numpy().astype(np.float64),
                            layer.bias.numpy().astype(np.float64), 2, 1)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-5)
    assert nn.Conv2d(2, 3, 3, bias=False).bias is None
    assert [name for name, _ in nn.Conv2d(2, 3, 3, bias=False).named_parameters()] == ["weight"]


# -- pooling -----------------------------------------------------------------------------------------------------
@SETTINGS
@given(pool_config(), st.data())
def test_max_pool2d_against_loops_and_gradcheck(config, data):
    shape, k, stride, padding = config
    x = data.draw(images(*shape, unique=True))
    out = F.max_pool2d(leaf(x), k, stride, padding)
    np.testing.assert_array_equal(out.numpy(), pool_loops(x, k, stride, padding, np.max, -np.inf))
    assert gradcheck(lambda t: F.max_pool2d(t, k, stride, padding), leaf(x))


@SETTINGS
@given(pool_config(), st.data())
def test_avg_pool2d_against_loops_and_gradcheck(config, data):
    shape, k, stride, padding = config
    x = data.draw(images(*shape))
    out = F.avg_pool2d(leaf(x), k, stride, padding)
    np.testing.assert_allclose(out.numpy(), pool_loops(x, k, stride, padding, np.mean, 0.0), rtol=1e-12, atol=1e-15)
    assert gradcheck(lambda t: F.avg_pool2d(t, k, stride, padding), leaf(x))


def test_max_pool2d_gives_a_tie_to_the_first_position():
    x = leaf(np.ones((1, 1, 2, 4)))
    F.max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad[0, 0], [[1, 0, 1, 0], [0, 0, 0, 0]])
    y = leaf(np.zeros((1, 1, 3, 3)))  # overlapping windows, all tied: each window's first pixel
    F.max_pool2d(y, 2, stride=1).sum().backward()
    np.testing.assert_array_equal(y.grad[0, 0], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])


def test_max_pool2d_overlapping_windows_add_up():
    x = leaf(np.array([[[[0.0, 1.0, 0.0], [0.0, 5.0, 0.0], [0.0, 2.0, 0.0]]]]))
    out = F.max_pool2d(x, 2, stride=1)  # 5 is the max of all four windows
    np.testing.assert_array_equal(out.numpy(), np.full((1, 1, 2, 2), 5.0))
    out.sum().backward()
    assert x.grad[0, 0, 1, 1] == 4.0 and x.grad.sum() == 4.0


def test_pool_layers_and_global_average():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 4, 6))
    np.testing.assert_array_equal(nn.MaxPool2d(2)(Tensor(x)).numpy(), pool_loops(x, 2, 2, 0, np.max, -np.inf))
    np.testing.assert_allclose(nn.MaxPool2d(3, stride=1, padding=1)(Tensor(x)).numpy(),
                               pool_loops(x, 3, 1, 1, np.max, -np.inf))
    np.testing.assert_allclose(nn.AvgPool2d(2, stride=1)(Tensor(x)).numpy(), pool_loops(x, 2, 1, 0, np.mean, 0.0))
    out = nn.GlobalAvgPool2d()(leaf(x))
    np.testing.assert_allclose(out.numpy(), x.mean(axis=(2, 3)))
    np.testing.assert_allclose(F.global_avg_pool2d(Tensor(x)).numpy(), x.mean(axis=(2, 3)))
    assert gradcheck(lambda t: nn.GlobalAvgPool2d()(t), leaf(x[:1, :2, :2, :3]))


# -- batch norm ----------------------------------------------------------------------------------------------------
@SETTINGS
@given(st.sampled_from([(5, 3), (4, 2, 3), (2, 3, 2, 2)]), st.data())
def test_batch_norm_training_formula_and_gradcheck(shape, data):
    x = data.draw(distinct(shape, spacing=0.37))
    weight, bias = data.draw(arrays((shape[1],), 0.5, 2.0)), data.draw(arrays((shape[1],)))
    axes = (0,) + tuple(range(2, len(shape)))
    c = (1, -1) + (1,) * (len(shape) - 2)
    expected = (x - x.mean(axis=axes).reshape(c)) / np.sqrt(x.var(axis=axes).reshape(c) + 1e-5)
    expected = expected * weight.reshape(c) + bias.reshape(c)
    out = F.batch_norm(leaf(x), None, None, leaf(weight), leaf(bias), training=True)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda *t: F.batch_norm(t[0], None, None, t[1], t[2], training=True),
                     leaf(x), leaf(weight), leaf(bias))


@SETTINGS
@given(st.sampled_from([(5, 3), (2, 3, 2, 2)]), st.data())
def test_batch_norm_eval_formula_and_gradcheck(shape, data):
    x = data.draw(arrays(shape))
    mean, var = data.draw(arrays((shape[1],))), data.draw(arrays((shape[1],), 0.2, 3.0))
    weight, bias = data.draw(arrays((shape[1],))), data.draw(arrays((shape[1],)))
    c = (1, -1) + (1,) * (len(shape) - 2)
    expected = (x - mean.reshape(c)) / np.sqrt(var.reshape(c) + 1e-5) * weight.reshape(c) + bias.reshape(c)
    out = F.batch_norm(leaf(x), mean, var, leaf(weight), leaf(bias), training=False)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda *t: F.batch_norm(t[0], mean, var, t[1], t[2], training=False),
                     leaf(x), leaf(weight), leaf(bias))


@pytest.mark.parametrize("layer_cls, shape", [(nn.BatchNorm1d, (6, 3)), (nn.BatchNorm2d, (3, 3, 2, 2))])
def test_batch_norm_running_statistics(layer_cls, shape):
    rng = np.random.default_rng(3)
    layer = layer_cls(3, momentum=0.2)
    axes = (0,) + tuple(range(2, len(shape)))
    count = int(np.prod([shape[a] for a in axes]))
    mean, var = np.zeros(3), np.ones(3)
    for step in range(3):
        x = rng.standard_normal(shape) * (step + 1) + step
        if step == 2:
            with no_grad():  # the running statistics update in training even when no graph is recorded
                layer(Tensor(x))
        else:
            layer(Tensor(x))
        mean = 0.8 * mean + 0.2 * x.mean(axis=axes)
        var = 0.8 * var + 0.2 * x.var(axis=axes) * count / (count - 1)  # unbiased
        np.testing.assert_allclose(layer.running_mean, mean, rtol=1e-5)
        np.testing.assert_allclose(layer.running_var, var, rtol=1e-5)
    layer.eval()
    x = rng.standard_normal(shape)
    c = (1, -1) + (1,) * (len(shape) - 2)
    expected = (x - mean.reshape(c)) / np.sqrt(var.reshape(c) + 1e-5)
    np.testing.assert_allclose(layer(Tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.running_mean, mean, rtol=1e-5)  # eval leaves them alone


def test_batch_norm_errors():
    with pytest.raises(ValueError, match="more than one value"):
        F.batch_norm(Tensor(np.ones((1, 3))), None, None, training=True)
    with pytest.raises(ValueError, match="BatchNorm2d"):
        nn.BatchNorm2d(3)(Tensor(np.ones((2, 3))))
    with pytest.raises(ValueError, match="BatchNorm1d"):
        nn.BatchNorm1d(3)(Tensor(np.ones((2, 4))))


# -- linear, relu, normalize, dropout, flatten, sequential --------------------------------------------------------
@SETTINGS
@given(hnp.array_shapes(min_dims=1, max_dims=3, max_side=3), st.integers(1, 3), st.booleans(), st.data())
def test_linear_formula_and_gradcheck(shape, out_features, with_bias, data):
    x = data.draw(arrays(shape))
    w = data.draw(arrays((out_features, shape[-1])))
    b = data.draw(arrays((out_features,))) if with_bias else None
    out = F.linear(leaf(x), leaf(w), None if b is None else leaf(b))
    np.testing.assert_allclose(out.numpy(), x @ w.T + (0 if b is None else b), rtol=1e-12, atol=1e-12)
    inputs = [leaf(x), leaf(w)] + ([] if b is None else [leaf(b)])
    assert gradcheck(lambda *t: F.linear(*t), *inputs)


def test_linear_layer():
    layer = nn.Linear(4, 2, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(layer(Tensor(x)).numpy(), x @ layer.weight.numpy().T + layer.bias.numpy(), rtol=1e-6)
    assert layer.weight.shape == (2, 4) and layer.bias.shape == (2,)
    with pytest.raises(ValueError, match="4 features"):
        layer(Tensor(np.ones((3, 5))))
    assert nn.Linear(4, 2, bias=False).bias is None


@SETTINGS
@given(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), st.data())
def test_relu_layer(shape, data):
    x = data.draw(away_from_zero(shape))
    np.testing.assert_array_equal(nn.ReLU()(leaf(x)).numpy(), np.maximum(x, 0))
    assert gradcheck(lambda t: nn.ReLU()(t), leaf(x))


@SETTINGS
@given(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), st.data())
def test_normalize_formula_and_gradcheck(shape, data):
    x = data.draw(away_from_zero(shape))  # every norm >= 0.1
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    out = F.normalize(leaf(x), dim=dim)
    np.testing.assert_allclose(out.numpy(), x / np.linalg.norm(x, axis=dim, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(out.numpy(), axis=dim), 1.0, rtol=1e-12)
    assert gradcheck(lambda t: F.normalize(t, dim=dim), leaf(x))


def test_normalize_is_safe_at_zero_norm():
    x = leaf([[0.0, 0.0, 0.0], [3.0, 4.0, 0.0]])
    with np.errstate(all="raise"):
        out = nn.L2Normalize()(x)
        (out * Tensor(np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]]))).sum().backward()
    np.testing.assert_array_equal(out.numpy()[0], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(out.numpy()[1], [0.6, 0.8, 0.0])
    assert np.all(np.isfinite(x.grad))
    # the normal row: (g - y (y . g)) / ||x||
    y, g = np.array([0.6, 0.8, 0.0]), np.ones(3)
    np.testing.assert_allclose(x.grad[1], (g - y * (y @ g)) / 5.0)
    with pytest.raises(ValueError, match="p=2"):
        F.normalize(x, p=1)


def test_normalize_below_eps_is_a_linear_map():
    # rows with norm < eps are divided by eps (as torch's x / max(||x||, eps)); rows above by their norm
    x = np.array([[0.06, 0.08], [0.3, -0.4]])  # norms 0.1 and 0.5
    out = F.normalize(leaf(x), eps=0.25)
    np.testing.assert_allclose(out.numpy(), [[0.24, 0.32], [0.6, -0.8]])
    assert gradcheck(lambda t: F.normalize(t, eps=0.25), leaf(x))


def test_dropout_is_seeded_scaled_and_identity_in_eval():
    x = Tensor(np.ones((200, 50)), requires_grad=True)
    a = F.dropout(x, 0.3, training=True, rng=np.random.default_rng(7))
    b = F.dropout(x, 0.3, training=True, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert set(np.unique(a.numpy())) <= {0.0, 1 / 0.7}
    dropped = np.mean(a.numpy() == 0)
    assert abs(dropped - 0.3) < 4 * np.sqrt(0.3 * 0.7 / x.size)
    a.sum().backward()
    np.testing.assert_allclose(x.grad, a.numpy())  # gradient = mask / (1 - p)
    assert F.dropout(x, 0.3, training=False) is x

    layer = nn.Dropout(0.5)
    manual_seed(11)
    first = layer(Tensor(np.ones(100))).numpy()
    manual_seed(11)
    np.testing.assert_array_equal(layer(Tensor(np.ones(100))).numpy(), first)
    layer.eval()
    np.testing.assert_array_equal(layer(Tensor(np.arange(5.0))).numpy(), np.arange(5.0))
    with pytest.raises(ValueError, match="probability"):
        F.dropout(x, 1.0)


def test_flatten_and_sequential():
    x = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(nn.Flatten()(Tensor(x)).numpy(), x.reshape(2, 12))
    rng = np.random.default_rng(0)
    first, second = nn.Linear(12, 5, rng=rng), nn.Linear(5, 2, rng=rng)
    model = nn.Sequential(nn.Flatten(), first, nn.ReLU(), second)
    assert len(model) == 4 and model[1] is first and model[-1] is second
    expected = np.maximum(x.reshape(2, 12) @ first.weight.numpy().T + first.bias.numpy(), 0)
    expected = expected @ second.weight.numpy().T + second.bias.numpy()
    np.testing.assert_allclose(model(Tensor(x)).numpy(), expected, rtol=1e-5)
    assert "Linear(12, 5" in repr(model)


def test_functional_names_and_argument_orders_follow_pytorch():
    def params(fn):
        return [(p.name, p.default) for p in inspect.signature(fn).parameters.values()]

    empty = inspect.Parameter.empty
    assert params(F.conv2d) == [("x", empty), ("weight", empty), ("bias", None), ("stride", 1), ("padding", 0)]
    assert params(F.max_pool2d)[:3] == [("x", empty), ("kernel_size", empty), ("stride", None)]
    assert params(F.avg_pool2d)[:3] == [("x", empty), ("kernel_size", empty), ("stride", None)]
    assert params(F.linear) == [("x", empty), ("weight", empty), ("bias", None)]
    assert params(F.normalize) == [("x", empty), ("p", 2), ("dim", -1), ("eps", 1e-12)]
    assert [name for name, _ in params(F.batch_norm)] == [
        "x", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps"]
    assert not hasattr(F, "relu")  # elementwise ops are Tensor methods: x.relu()


# -- Module ------------------------------------------------------------------------------------------------------
def small_net(seed=0):
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, rng=rng), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(),
                         nn.Linear(2 * 4 * 4, 3, rng=rng), nn.L2Normalize())


def test_parameters_and_named_parameters():
    net = small_net()
    names = [name for name, _ in net.named_parameters()]
    assert names == ["0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias"]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())
    assert net.num_parameters() == 2 * 9 + 2 + 2 + 2 + 32 * 3 + 3
    assert [name for name, _ in net.named_buffers()] == ["1.running_mean", "1.running_var"]


def test_shared_parameters_are_listed_once():
    layer = nn.Linear(2, 2, rng=np.random.default_rng(0))
    net = nn.Sequential(layer, nn.ReLU(), layer)
    assert len(net.parameters()) == 2
    tied = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    tied[1].weight = tied[0].weight
    assert len(tied.parameters()) == 3
    before = layer.weight.numpy().copy()
    out = net(Tensor(np.ones((1, 2)))).sum()
    out.backward()
    grad = layer.weight.grad.copy()
    optim.SGD(net.parameters(), lr=0.1).step()
    np.testing.assert_allclose(layer.weight.numpy(), before - 0.1 * grad, rtol=1e-6)  # one step, not two


def test_train_eval_and_zero_grad():
    net = small_net()
    assert all(m.training for _, m in net.named_modules())
    assert net.eval() is net
    assert not any(m.training for _, m in net.named_modules())
    net.train()
    assert all(m.training for _, m in net.named_modules())
    net(Tensor(np.random.default_rng(0).standard_normal((4, 1, 4, 4)))).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_state_dict_round_trip(tmp_path):
    net = small_net(seed=0)
    x = Tensor(np.random.default_rng(1).standard_normal((4, 1, 4, 4)))
    net(x)  # moves the running statistics away from their initial values
    net.eval()
    expected = net(x).numpy()
    state = net.state_dict()
    assert set(state) == {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                          "4.weight", "4.bias"}
    state["0.weight"][...] = 0  # a copy: the model is untouched
    assert np.any(net[0].weight.numpy() != 0)

    np.savez(tmp_path / "net.npz", **net.state_dict())
    other = small_net(seed=5).eval()
    assert not np.allclose(other(x).numpy(), expected)
    with np.load(tmp_path / "net.npz", allow_pickle=False) as saved:
        other.load_state_dict(dict(saved))
    np.testing.assert_array_equal(other(x).numpy(), expected)
    np.testing.assert_array_equal(other[1].running_var, net[1].running_var)
    assert other[0].weight.dtype == np.float32


def test_load_state_dict_errors_are_clear():
    net = small_net()
    state = net.state_dict()
    missing = {k: v for k, v in state.items() if k != "4.bias"}
    with pytest.raises(ValueError, match=r"missing \['4.bias'\]"):
        net.load_state_dict(missing)
    with pytest.raises(ValueError, match=r"unexpected \['5.weight'\]"):
        net.load_state_dict({**state, "5.weight": np.zeros(3)})
    with pytest.raises(ValueError, match=r"4.weight: saved shape \(3, 31\) but the model has \(3, 32\)"):
        net.load_state_dict({**state, "4.weight": np.zeros((3, 31))})
    with pytest.raises(ValueError, match="running_mean"):
        net.load_state_dict({**state, "1.running_mean": np.zeros(5)})


def test_module_basics():
    class NoInit(nn.Module):
        def __init__(self):
            pass

    with pytest.raises(RuntimeError, match="super"):
        NoInit().register_buffer("x", np.zeros(1))
    with pytest.raises(AttributeError, match="nothing"):
        _ = nn.ReLU().nothing
    with pytest.raises(NotImplementedError):
        nn.Module()(Tensor([1.0]))


@pytest.mark.parametrize("make, fan_in", [(lambda rng: nn.Conv2d(32, 64, 3, rng=rng), 32 * 9),
                                          (lambda rng: nn.Linear(256, 128, rng=rng), 256)])
def test_he_initialisation_variance(make, fan_in):
    layer = make(np.random.default_rng(0))
    w = layer.weight.numpy().astype(np.float64)
    assert layer.weight.dtype == np.float32
    assert w.var() == pytest.approx(2.0 / fan_in, rel=0.05)
    assert abs(w.mean()) < 4 * np.sqrt(2.0 / fan_in / w.size)
    assert np.all(np.abs(layer.bias.numpy()) <= 1 / np.sqrt(fan_in))
    np.testing.assert_array_equal(make(np.random.default_rng(0)).weight.numpy(), layer.weight.numpy())
    assert nn.he_normal((4000,), 10, np.random.default_rng(1)).var() == pytest.approx(0.2, rel=0.1)


def test_layers_on_a_float64_batch_keep_float64():
    x = Tensor(np.random.default_rng(0).standard_normal((2, 1, 4, 4)))
    out = small_net().eval()(x)
    assert out.dtype == np.float64


# -- optional parity with PyTorch ------------------------------------------------------------------------------------
def test_functional_ops_match_torch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    cases = [
        (lambda t, u, v: F.conv2d(t, u, v, stride=2, padding=1),
         lambda t, u, v: tf.conv2d(t, u, v, stride=2, padding=1)),
        (lambda t, u, v: F.max_pool2d(t, 3, 2, 1) * v.sum(), lambda t, u, v: tf.max_pool2d(t, 3, 2, 1) * v.sum()),
        (lambda t, u, v: F.avg_pool2d(t, 3, 2, 1) + u.sum(), lambda t, u, v: tf.avg_pool2d(t, 3, 2, 1) + u.sum()),
        (lambda t, u, v: F.batch_norm(t, None, None, v[:3], v[1:], training=True),
         lambda t, u, v: tf.batch_norm(t, None, None, v[:3], v[1:], training=True)),
        (lambda t, u, v: F.normalize(t.reshape(2, -1), dim=1), lambda t, u, v: tf.normalize(t.reshape(2, -1), dim=1)),
    ]
    for ours, theirs in cases:
        mine = [leaf(a) for a in (x, w, b)]
        ref = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
        out, expected = ours(*mine), theirs(*ref)
        np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-10, atol=1e-12)
        weights = rng.standard_normal(out.shape)
        (out * Tensor(weights)).sum().backward()
        (expected * torch.tensor(weights)).sum().backward()
        for m, r in zip(mine, ref, strict=True):
            if r.grad is not None:
                np.testing.assert_allclose(m.grad, r.grad.numpy(), rtol=1e-9, atol=1e-12)
