import numpy as np
import pytest

from edgedl.data import denoising
from edgedl.data.denoising import ImageSet, Noise
from runtime.errors import UserError

def test_noise_has_the_asked_sigma_and_eval_inputs_are_8_bit():
    rng = np.random.default_rng(0)
    clean = np.full((200, 200, 1), 0.5, np.float32)
    noisy = denoising.add_noise(clean, 25, rng)
    assert np.std(noisy - clean) * 255 == pytest.approx(25, rel=0.03)
    np.testing.assert_allclose(noisy * 255, np.round(noisy * 255), atol=1e-4)  # whole 8-bit levels
    assert noisy.min() >= 0 and noisy.max() <= 1


def test_patch_batches_give_fresh_pairs_and_blind_sigmas_per_patch():
    images = ImageSet(tuple(np.random.default_rng(1).random((5, 60, 50, 1)).astype(np.float32)), "test")
    fixed = denoising.patch_batches(images, Noise(25), 40, 4, 8, seed=0)
    assert len(fixed) == 3 and fixed[0][0].shape == (8, 40, 40, 1)
    first = fixed.clean.copy()
    fixed.on_epoch_end()
    assert not np.array_equal(first, fixed.clean)  # new crops every epoch
    blind = denoising.patch_batches(images, Noise(None), 40, 20, 100, seed=0)
    sigmas = (blind.noisy - blind.clean).reshape(100, -1).std(axis=1) * 255
    assert sigmas.min() < 15 and sigmas.max() > 40  # drawn per patch from [0, 55]


def test_moving_digit_sequences_stay_in_the_frame_and_move(mnist):
    digits = mnist[1].x[:20]
    seq = denoising.moving_digit_sequences(digits, 8, 32, np.random.default_rng(2))
    assert seq.shape == (20, 8, 32, 32, 1)
    # Every frame holds the whole digit (nothing cut off at the edges).
    np.testing.assert_allclose(seq.sum(axis=(2, 3, 4)), np.repeat(digits.sum(axis=(1, 2, 3))[:, None], 8, 1), rtol=1e-5)
    # The digit's centre moves at most 1 px per frame on each axis, and most digits move.
    ys, xs = np.arange(32)[:, None], np.arange(32)[None, :]
    mass = seq[..., 0].sum(axis=(2, 3))
    centre = np.stack([(seq[..., 0] * ys).sum(axis=(2, 3)) / mass, (seq[..., 0] * xs).sum(axis=(2, 3)) / mass], -1)
    steps = np.abs(np.diff(centre, axis=1))
    assert steps.max() <= 1 + 1e-4
    assert (steps.max(axis=(1, 2)) > 0.5).sum() >= 15


def test_sequence_batches_train_on_the_8_bit_noise_they_are_evaluated_on(mnist):
    """Clipped at 0 and 1 as the evaluation's noisy frames are: float noise on digits would be another problem."""
    noisy, clean = denoising.sequence_batches(mnist[1].x[:16], Noise(50.0, 50.0), 8, 32, 16, seed=0)[0]
    assert noisy.shape == clean.shape == (16, 8, 32, 32, 1) and noisy.min() >= 0 and noisy.max() <= 1
    np.testing.assert_allclose(noisy * 255, np.round(noisy * 255), atol=1e-3)
    evaluated = denoising.add_noise(clean, 50.0, np.random.default_rng(1))
    assert np.sqrt(((noisy - clean) ** 2).mean()) == pytest.approx(np.sqrt(((evaluated - clean) ** 2).mean()), rel=0.05)


def test_bad_denoising_inputs_are_named(tmp_path):
    with pytest.raises(UserError, match="noise sigma must be in"):
        Noise(300)
    with pytest.raises(UserError, match="--sigma takes a number"):
        Noise.parse("loud")
    with pytest.raises(UserError, match="no such folder of images"):
        denoising.load_images(tmp_path / "none")
    tiny = ImageSet((np.zeros((20, 20, 1), np.float32),), "tiny")
    with pytest.raises(UserError, match="smaller than the 40×40 patches"):
        denoising.random_patches(tiny, 40, 1, np.random.default_rng(0))
    with pytest.raises(UserError, match="give --eval-data too"):
        denoising.train_eval(tmp_path, None)


def test_a_folder_of_grey_and_rgb_pngs_of_two_sizes_loads_as_grey_images_in_0_1(tmp_path):
    """The shape of Set12 (12 PNGs, 256×256 and 512×512), made here rather than read from the shared data."""
    from PIL import Image

    rng = np.random.default_rng(3)
    for i in range(12):
        size = 256 if i < 10 else 512
        pixels = rng.integers(0, 256, (size, size, 3 if i % 4 == 0 else 1), dtype=np.uint8)
        Image.fromarray(pixels.squeeze()).save(tmp_path / f"{i + 1:02d}.png")
    images = denoising.load_images(tmp_path)
    assert len(images) == 12
    assert {img.shape for img in images.images} == {(256, 256, 1), (512, 512, 1)}
    assert all(0 <= img.min() and img.max() <= 1 and img.max() > 0.9 for img in images.images)
