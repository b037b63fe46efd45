"""The face CNNs: size, output, rebuilding from a config, parity with an equivalent PyTorch network, and a small
CNN that learns to tell two real Olivetti people apart."""

import numpy as np
import pytest

from tinyface import Tensor, no_grad, optim
from tinyface.nn.models import FaceCNN, build_model, lfw_cnn, reference_cnn


def test_reference_cnn_size_and_names():
    model = reference_cnn(rng=np.random.default_rng(0))
    assert model.num_parameters() == 257_120
    assert sum(p.size for p in model.parameters()) == 257_120
    names = [name for name, _ in model.named_parameters()]
    assert names[:3] == ["features.0.weight", "features.1.weight", "features.1.bias"]
    assert names[-2:] == ["embedding.weight", "embedding.bias"]
    assert model.features[0].bias is None  # conv before batch norm: no bias


def test_reference_cnn_outputs_unit_norm_embeddings():
    model = reference_cnn(rng=np.random.default_rng(0))
    images = Tensor(np.random.default_rng(1).random((3, 1, 64, 64), dtype=np.float32))
    for mode in (model.train, model.eval):
        mode()
        with no_grad():
            out = model(images)
        assert out.shape == (3, 128) and out.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(out.numpy(), axis=1), 1.0, rtol=1e-5)


def test_other_models_and_config_round_trip():
    model = FaceCNN(1, (4, 8), embedding_dim=5, normalize=False, rng=np.random.default_rng(0))
    x = Tensor(np.random.default_rng(1).random((2, 1, 16, 16)))
    out = model(x)
    assert out.shape == (2, 5)
    assert not np.allclose(np.linalg.norm(out.numpy(), axis=1), 1.0)
    np.testing.assert_allclose(model.embed_unnormalized(x).numpy(), out.numpy())

    rebuilt = build_model(model.config)
    rebuilt.load_state_dict(model.state_dict())
    np.testing.assert_allclose(rebuilt(x).numpy(), out.numpy())
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model({"name": "ResNet"})
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        model(Tensor(np.ones((2, 3, 16, 16))))
    assert lfw_cnn(rng=np.random.default_rng(0)).config["in_channels"] == 3


def test_reference_cnn_matches_torch_in_train_mode():
    torch = pytest.importorskip("torch")
    model = reference_cnn(rng=np.random.default_rng(0))

    layers, channels = [], 1
    for i, width in enumerate((32, 64, 128, 128)):
        layers += [torch.nn.Conv2d(channels, width, 3, padding=1, bias=False), torch.nn.BatchNorm2d(width),
                   torch.nn.ReLU()]
        if i < 3:
            layers.append(torch.nn.MaxPool2d(2))
        channels = width
    features, embedding = torch.nn.Sequential(*layers), torch.nn.Linear(128, 128)
    theirs = {f"features.{k}": v for k, v in features.state_dict().items()}
    theirs.update({f"embedding.{k}": v for k, v in embedding.state_dict().items()})
    with torch.no_grad():
        for name, value in model.state_dict().items():
            theirs[name].copy_(torch.from_numpy(value))

    def torch_forward(x):
        return torch.nn.functional.normalize(embedding(features(x).mean(dim=(2, 3))), dim=1)

    rng = np.random.default_rng(1)
    images = rng.random((4, 1, 64, 64), dtype=np.float32)
    weights = rng.standard_normal((4, 128)).astype(np.float32)

    out = model(Tensor(images))
    (out * Tensor(weights)).sum().backward()
    expected = torch_forward(torch.from_numpy(images))
    (expected * torch.from_numpy(weights)).sum().backward()

    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), atol=2e-5)
    torch_params = dict(features.named_parameters(prefix="features"))
    torch_params.update(dict(embedding.named_parameters(prefix="embedding")))
    for name, p in model.named_parameters():
        ref = torch_params[name].grad.numpy()
        np.testing.assert_allclose(p.grad, ref, rtol=1e-3, atol=1e-4 * np.abs(ref).max(), err_msg=name)
    for name, value in model.state_dict().items():  # running statistics updated the same way
        if "running" in name:
            np.testing.assert_allclose(value, theirs[name].numpy(), rtol=1e-4, atol=1e-6, err_msg=name)

    model.eval()
    features.eval()
    with no_grad(), torch.no_grad():
        np.testing.assert_allclose(model(Tensor(images)).numpy(), torch_forward(torch.from_numpy(images)).numpy(),
                                   atol=2e-5)


def squared_distances(e):
    diff = e[:, None, :] - e[None, :, :]
    return (diff * diff).sum(axis=-1)


def test_a_small_cnn_learns_to_tell_two_olivetti_people_apart(olivetti):
    data = olivetti.people([0, 1])
    n = len(data)
    images = data.to_float().reshape(n, 1, 32, 2, 32, 2).mean(axis=(3, 5))  # 32x32
    images = (images - images.mean()) / images.std()
    labels = data.labels
    rank = np.array([np.sum(labels[:i] == labels[i]) for i in range(n)])  # which of the person's images
    train, test = np.flatnonzero(rank < 5), np.flatnonzero(rank >= 5)
    assert len(train) == 10 and len(test) == 10 and set(labels[train]) == {0, 1}

    model = FaceCNN(1, (8, 16), embedding_dim=16, rng=np.random.default_rng(0))
    opt = optim.Adam(model.parameters(), lr=0.01)
    same = labels[train][:, None] == labels[train][None, :]
    positive, negative = same & ~np.eye(len(train), dtype=bool), ~same
    margin = 1.0  # contrastive loss on squared distances of unit vectors (which lie in [0, 4])
    losses = []
    for _ in range(40):
        d = squared_distances(model(Tensor(images[train])))
        loss = (d * Tensor(positive / positive.sum())).sum() + (
            (margin - d).relu() * Tensor(negative / negative.sum())).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.2 * losses[0]

    model.eval()
    with no_grad():
        train_embeddings = model(Tensor(images[train])).numpy()
        test_embeddings = model(Tensor(images[test])).numpy()
    d = ((train_embeddings[:, None] - train_embeddings[None]) ** 2).sum(-1)
    assert d[positive].max() < d[negative].min()  # the training images are separable
    d_test = ((test_embeddings[:, None] - train_embeddings[None]) ** 2).sum(-1)
    accuracy = np.mean(labels[train][d_test.argmin(axis=1)] == labels[test])  # 1-NN on the unseen images
    assert accuracy >= 0.7
