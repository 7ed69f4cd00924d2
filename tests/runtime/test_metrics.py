import numpy as np
import pytest

from runtime.metrics import denoising_metrics, psnr, ssim


def test_psnr_of_a_known_error():
    clean = np.full((16, 16, 1), 0.5, np.float32)
    assert psnr(clean, clean + 0.1) == pytest.approx(20.0, abs=1e-4)  # MSE 0.01 -> 20 dB
    assert psnr(clean, clean + 0.01) == pytest.approx(40.0, abs=1e-3)
    assert psnr(clean, clean) == float("inf")


def test_psnr_clips_the_output_to_the_valid_range():
    clean = np.ones((8, 8, 1), np.float32)
    assert psnr(clean, clean + 5.0) == float("inf")  # anything above 1 is clipped to 1


def test_ssim_is_one_for_identical_and_drops_with_noise():
    rng = np.random.default_rng(0)
    img = rng.random((48, 48, 1)).astype(np.float32)
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-9)
    slight = ssim(img, np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1))
    heavy = ssim(img, np.clip(img + rng.normal(0, 0.2, img.shape), 0, 1))
    assert 1.0 > slight > heavy > 0.0
    # A constant shift changes only the luminance term: (2·μa·μb + C1) / (μa² + μb² + C1) for flat images.
    flat = np.full((32, 32, 1), 0.4, np.float32)
    expected = (2 * 0.4 * 0.5 + 0.01**2) / (0.4**2 + 0.5**2 + 0.01**2)
    assert ssim(flat, flat + 0.1) == pytest.approx(expected, rel=1e-6)


def test_denoising_metrics_average_images_and_sequence_frames():
    a = np.full((8, 8, 1), 0.5, np.float32)
    images = denoising_metrics([a, a], [a + 0.1, a + 0.01])
    assert images["psnr"] == pytest.approx(30.0, abs=1e-3)
    seq = denoising_metrics([np.stack([a, a])], [np.stack([a + 0.1, a + 0.01])])
    assert seq["psnr"] == pytest.approx(images["psnr"]) and seq["ssim"] == pytest.approx(images["ssim"])


def test_fidelity_measures_how_far_a_variant_strays_from_the_original():
    from runtime.metrics import SNR_CAP_DB, fidelity

    rng = np.random.default_rng(0)
    ref = [rng.normal(size=10) for _ in range(50)]
    same = fidelity(ref, ref)
    assert same == {"snr_db": SNR_CAP_DB, "cosine": 1.0, "max_abs_error": 0.0, "top1_agreement": 1.0,
                    "channel_psnr_min": SNR_CAP_DB, "worst_channel": 0, "channel_psnr_mean": SNR_CAP_DB,
                    "channels_ok": 1.0}  # fmt: skip
    noisy = [r + rng.normal(scale=0.1, size=10) for r in ref]  # noise 20 dB below a unit-variance signal
    f = fidelity(ref, noisy)
    assert 18 < f["snr_db"] < 22 and 0.98 < f["cosine"] < 1.0 and 0.2 < f["max_abs_error"] < 0.6
    flipped = [-r for r in ref]
    assert fidelity(ref, flipped)["cosine"] == pytest.approx(-1.0) and fidelity(ref, flipped)["top1_agreement"] < 0.2
    images = [rng.random((4, 4, 1)) for _ in range(3)]  # not score vectors: no top-1
    assert "top1_agreement" not in fidelity(images, images)


def test_fidelity_per_channel_sees_scores_a_whole_tensor_hides():
    """A detector head of 4 box rows (0-320) and 80 class-score rows (0-1), as YOLO's 84×N: scores collapsed
    to two values barely move the whole tensor's SNR or cosine; every score channel's own PSNR falls."""
    from runtime.metrics import CHANNEL_FLOOR_DB, channel_axis, fidelity

    rng = np.random.default_rng(0)
    ref = [np.concatenate([rng.uniform(0, 320, (4, 200)), rng.uniform(0, 1, (80, 200))]) for _ in range(8)]
    collapsed = [np.concatenate([r[:4] + rng.normal(0, 0.5, (4, 200)), np.where(r[4:] > 0.5, 1.24, 0.0)]) for r in ref]
    f = fidelity(ref, collapsed)
    assert f["cosine"] > 0.999 and f["snr_db"] > 30  # what the report showed: lossless, to one number
    assert f["channel_psnr_min"] < CHANNEL_FLOOR_DB and f["worst_channel"] >= 4  # a score row, named by index
    assert f["channels_ok"] == pytest.approx(4 / 84)  # the four box rows alone kept their range
    good = [r + rng.normal(0, 1e-3, r.shape) for r in ref]
    assert fidelity(ref, good)["channels_ok"] == 1.0
    assert channel_axis((84, 8400)) == 0 and channel_axis((96, 96, 3)) == 2 and channel_axis((3, 64, 64)) == 0
    assert channel_axis(()) is None and channel_axis((10,)) == 0


def test_the_tail_finds_the_one_sample_a_mean_hides():
    from runtime.tasks import tail

    labels = np.array([0, 0, 1, 1, 2, 2, 2, 2])
    original = [np.eye(3)[c] for c in labels]
    variant = [o.copy() for o in original]
    variant[4] = np.eye(3)[0]  # one image of class 2 now called 0
    assert tail("classification", original, variant, labels) == {"flips": 1, "recall_drop_max": 25.0}
    assert tail("classification", original, original, labels) == {"flips": 0, "recall_drop_max": 0.0}

    rng = np.random.default_rng(0)
    clean = [rng.random((12, 12, 1)).astype(np.float32) for _ in range(20)]
    restored = [np.clip(c + 0.01, 0, 1) for c in clean]
    worse = [r.copy() for r in restored]
    worse[7] = np.clip(clean[7] + 0.2, 0, 1)  # one image ruined
    damage = tail("denoising", restored, worse, clean)
    assert damage["psnr_delta_min"] < -20 and damage["psnr_delta_p5"] < -1
    assert tail("denoising", restored, restored, clean) == {"psnr_delta_p5": 0.0, "psnr_delta_min": 0.0}
    mean_loss = denoising_metrics(clean, restored)["psnr"] - denoising_metrics(clean, worse)["psnr"]
    assert mean_loss < -damage["psnr_delta_min"] / 10  # the mean hides it


def test_every_images_psnr_change_is_kept_and_the_worst_image_named(tmp_path):
    from runtime.runfolder import eval_names
    from runtime.metrics import psnr, psnr_deltas

    rng = np.random.default_rng(1)
    clean = [rng.random((16, 16, 1)).astype(np.float32) for _ in range(4)]
    restored = [np.clip(c + 0.01, 0, 1) for c in clean]
    worse = [r.copy() for r in restored]
    worse[2] = np.clip(clean[2] + 0.1, 0, 1)
    deltas = psnr_deltas(restored, worse, clean)
    assert deltas[2] == pytest.approx(psnr(clean[2], worse[2]) - psnr(clean[2], restored[2]))
    assert np.argmin(deltas) == 2 and deltas[2] < -15 and np.allclose(np.delete(deltas, 2), 0.0)
    np.savez(tmp_path / "eval.npz", task="denoising", n=4, names=np.array(["a.png", "b.png", "c.png", "d.png"]))
    assert eval_names(tmp_path / "eval.npz", 4)[int(np.argmin(deltas))] == "c.png"
    np.savez(tmp_path / "plain.npz", task="denoising", n=4)  # an older eval.npz: samples by number
    assert eval_names(tmp_path / "plain.npz", 4) == ["#1", "#2", "#3", "#4"]


def test_a_saved_reference_keeps_its_shape_so_images_get_no_top1_agreement(tmp_path):
    """The original's outputs go to disk for the variants' fidelity: sequences of images stay images there
    (flattened, they passed for score vectors and a denoiser got a 'top-1 agreement'); scores keep theirs."""
    from runtime.samples import load_outputs, save_outputs
    from runtime.metrics import fidelity

    rng = np.random.default_rng(0)
    for sample, top1 in (((8, 32, 32, 1), False), ((10,), True)):
        outputs = [rng.random(sample).astype(np.float32) for _ in range(5)]
        save_outputs(tmp_path / "ref.npz", outputs)
        reference = load_outputs(tmp_path / "ref.npz")
        assert [r.shape for r in reference] == [sample] * 5
        assert ("top1_agreement" in fidelity(reference, outputs)) is top1
