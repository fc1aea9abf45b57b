"""FVD: I3D loaded from a real safetensors file, Fréchet distance against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from geo4d_studio.errors import CheckpointError  # noqa: E402
from geo4d_studio.metrics.fvd import (  # noqa: E402
    InceptionI3d,
    compute_fvd,
    frechet_distance,
    i3d_features,
    load_i3d,
)


@pytest.fixture
def one_thread():
    """I3D on a shared 2-core machine is several times faster single-threaded."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def i3d_file(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = InceptionI3d(num_classes=16)  # small logits keep the covariance algebra cheap in tests
    path = tmp_path / "i3d.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def test_frechet_distance_closed_form_for_diagonal_covariances():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    d1, d2 = rng.uniform(0.1, 3, 6), rng.uniform(0.1, 3, 6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(d1 + d2 - 2 * np.sqrt(d1 * d2))
    assert frechet_distance(mu1, np.diag(d1), mu2, np.diag(d2)) == pytest.approx(expected, rel=1e-10)
    assert frechet_distance(mu1, np.diag(d1), mu1, np.diag(d1)) == pytest.approx(0, abs=1e-10)
    assert frechet_distance([0.0], [[1.0]], [3.0], [[4.0]]) == pytest.approx(9 + 1 + 4 - 2 * 2)


def test_frechet_distance_matches_scipy_sqrtm_for_full_covariances():
    from scipy.linalg import sqrtm

    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(40, 8)), rng.normal(size=(40, 8)) @ rng.normal(size=(8, 8))
    mu1, s1, mu2, s2 = a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    reference = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * np.real(sqrtm(s1 @ s2)))
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-9)


def test_fvd_with_checkpoint_from_safetensors(i3d_file, one_thread):
    i3d = load_i3d(i3d_file)
    assert not i3d.training
    rng = np.random.default_rng(0)
    videos = rng.integers(0, 256, (3, 4, 40, 40, 3), dtype=np.uint8)
    darker = (videos // 3).astype(np.uint8)
    pooled = i3d_features(videos, i3d, size=32, features="pooled")
    logits = i3d_features(videos, i3d, size=32)
    assert pooled.shape == (3, 1024) and logits.shape == (3, 16)
    same = compute_fvd(videos, videos, i3d, size=32)
    different = compute_fvd(videos, darker, i3d, size=32)
    assert different > 0
    assert same == pytest.approx(0, abs=1e-6 * different)
    with pytest.raises(ValueError, match="at least 2 videos"):
        compute_fvd(videos[:1], videos, i3d, size=32)


def test_load_i3d_refuses_pickle_and_reports_bad_tensors(i3d_file, tmp_path):
    from safetensors.torch import load_file, save_file

    (tmp_path / "i3d.pt").write_bytes(b"\x80\x04junk")
    with pytest.raises(CheckpointError, match=r"i3d\.pt: format: pickle-based"):
        load_i3d(tmp_path / "i3d.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_i3d(tmp_path / "none.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="bad.safetensors: file: not a readable safetensors"):
        load_i3d(tmp_path / "bad.safetensors")
    tensors = load_file(str(i3d_file))
    missing = dict(tensors)
    del missing["Mixed_4c.b1b.conv3d.weight"]
    save_file(missing, str(tmp_path / "missing.safetensors"))
    with pytest.raises(CheckpointError, match="Mixed_4c.b1b.conv3d.weight: missing tensor"):
        load_i3d(tmp_path / "missing.safetensors")
    wrong = dict(tensors)
    wrong["Mixed_5c.b0.bn.weight"] = torch.zeros(7)
    save_file(wrong, str(tmp_path / "wrong.safetensors"))
    with pytest.raises(CheckpointError, match=r"Mixed_5c.b0.bn.weight: shape \(7,\)"):
        load_i3d(tmp_path / "wrong.safetensors")
    fewer = {k: v for k, v in tensors.items() if not k.endswith("num_batches_tracked")}
    fewer["logits.conv3d.weight"] = fewer["logits.conv3d.weight"][:10].contiguous()
    fewer["logits.conv3d.bias"] = fewer["logits.conv3d.bias"][:10].contiguous()
    save_file(fewer, str(tmp_path / "ten.safetensors"))
    assert load_i3d(tmp_path / "ten.safetensors").logits.conv3d.out_channels == 10
    extra = dict(tensors, **{"head.weight": torch.zeros(2)})
    save_file(extra, str(tmp_path / "extra.safetensors"))
    with pytest.raises(CheckpointError, match="head.weight: unexpected tensor"):
        load_i3d(tmp_path / "extra.safetensors")
