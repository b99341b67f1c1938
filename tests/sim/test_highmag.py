"""High-magnification exposures: image formation agrees with the optics, the dose and the truth."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from gridscout.model.optics import frequency_grid
from gridscout.sim import (
    TRUTH_VERDICT,
    ExposureSpec,
    HoleDefect,
    HoleTruth,
    default_b_factor,
    drift_trajectory,
    exposure_spec_for_hole,
    random_exposure_spec,
    simulate_micrograph,
    simulate_movie,
)
from gridscout.sim.grid import LAMBDA_ICE_NM
from gridscout.sim.highmag import _half_plane_frequencies

DRIFT_STARS = Path(__file__).resolve().parents[3] / "shared" / "data" / "real" / "highmag" / "betagal_drift"


def _spec(**kw) -> ExposureSpec:
    base = {"shape": (256, 256), "n_frames": 8, "drift_total_angstrom": 5.0}
    return ExposureSpec(**(base | kw))


def _power(image: np.ndarray) -> np.ndarray:
    """Periodogram with zero frequency at (rows // 2, cols // 2)."""
    return np.fft.fftshift(np.abs(np.fft.fft2(image - image.mean())) ** 2)


def _radial(power: np.ndarray, azimuth_deg: float | None = None, half_width_deg: float = 15.0) -> np.ndarray:
    """Average over rings of 1 px (optionally only within a sector around `azimuth_deg`)."""
    n = power.shape[0]
    y, x = np.indices(power.shape) - n // 2
    r = np.hypot(x, y).round().astype(int)
    keep = np.ones(power.shape, bool)
    if azimuth_deg is not None:
        delta = (np.degrees(np.arctan2(y, x)) - azimuth_deg + 90) % 180 - 90  # the spectrum is point-symmetric
        keep = np.abs(delta) <= half_width_deg
    return np.bincount(r[keep], power[keep]) / np.maximum(np.bincount(r[keep]), 1)


def _ctf_zeros_px(spec: ExposureSpec, n: int, azimuth_deg: float) -> np.ndarray:
    """Radii (px of an n-pixel spectrum) where CtfParams has its zeros along one direction."""
    s = np.linspace(1e-4, 0.5 / spec.pixel_size_angstrom, 20000)
    ctf = spec.ctf().ctf(s * s, math.radians(azimuth_deg))
    crossings = np.nonzero(np.diff(np.sign(ctf)))[0]
    return s[crossings] * n * spec.pixel_size_angstrom


# ---------------------------------------------------------------------- spec and truth


def test_invalid_specs_raise():
    with pytest.raises(ValidationError):
        ExposureSpec(dose_e_per_angstrom2=-1)
    with pytest.raises(ValidationError):
        ExposureSpec(defocus_u_angstrom=float("nan"))
    with pytest.raises(ValidationError):
        ExposureSpec(ice=40)  # not a field
    with pytest.raises(ValidationError):
        ExposureSpec(n_frames=1, drift_total_angstrom=5)


def test_ctf_carries_the_optics():
    spec = ExposureSpec(kv=200, cs_mm=1.4, amplitude_contrast=0.1, defocus_u_angstrom=21000,
                        defocus_v_angstrom=19000, astigmatism_angle_deg=35)
    ctf = spec.ctf()
    assert (ctf.kv, ctf.cs_mm, ctf.amplitude_contrast) == (200, 1.4, 0.1)
    assert ctf.defocus_mean_angstrom == 20000 and ctf.astigmatism_angle_deg == 35


def test_half_plane_frequencies_follow_the_optics_convention():
    s2, azimuth = _half_plane_frequencies((64, 48), 1.3)
    full_s2, full_azimuth = frequency_grid((64, 48), 1.3)
    assert np.allclose(s2, full_s2[:, :25])
    assert np.allclose(azimuth[:, :24], full_azimuth[:, :24])  # the last column is +Nyquist, not -Nyquist


def test_movie_shapes_dtypes_and_reproducibility():
    spec = _spec(shape=(96, 128), n_frames=5)
    frames, truth = simulate_movie(spec, np.random.default_rng(3))
    again, truth_again = simulate_movie(spec, np.random.default_rng(3))
    assert frames.shape == (5, 96, 128) and frames.dtype == np.uint8
    assert np.array_equal(frames, again) and truth == truth_again
    other, _ = simulate_movie(spec, np.random.default_rng(4))
    assert not np.array_equal(frames, other)
    image, _ = simulate_micrograph(spec, np.random.default_rng(3))
    assert image.shape == (96, 128) and image.dtype == np.float32
    bright_spec = _spec(n_frames=2, dose_e_per_angstrom2=1000, pixel_size_angstrom=2.0)  # 2000 e-/pixel/frame
    bright, _ = simulate_movie(bright_spec, np.random.default_rng(3))
    assert bright.dtype == np.uint16 and bright.max() > 255


def test_mean_counts_follow_dose_and_ice_attenuation():
    spec = _spec(n_frames=10, ice_nm=60.0, dose_e_per_angstrom2=50.0, pixel_size_angstrom=1.2)
    frames, _ = simulate_movie(spec, np.random.default_rng(0))
    expected = 50.0 * 1.2**2 / 10 * math.exp(-60.0 / LAMBDA_ICE_NM)
    assert frames.mean() == pytest.approx(expected, rel=0.01)
    image, _ = simulate_micrograph(spec, np.random.default_rng(0))
    assert image.mean() == pytest.approx(expected * 10, rel=0.01)


def test_empty_hole_frames_are_pure_poisson():
    frames, truth = simulate_movie(_spec(ice_nm=0.0, n_frames=20, dose_e_per_angstrom2=30.0), np.random.default_rng(1))
    lam = 30.0 / 20
    assert truth.empty and truth.particle_count == 0 and not truth.good
    assert frames.mean() == pytest.approx(lam, rel=0.01)
    assert frames.var() == pytest.approx(lam, rel=0.02)
    assert np.mean(frames == 0) == pytest.approx(math.exp(-lam), abs=0.003)


def test_truth_drift_matches_the_spec_and_the_frames():
    spec = _spec(shape=(256, 256), n_frames=4, dose_e_per_angstrom2=400.0, drift_total_angstrom=12.0,
                 drift_direction_deg=30.0, particles_per_um2=3000, particle_diameter_angstrom=60, ice_nm=20)
    frames, truth = simulate_movie(spec, np.random.default_rng(5))
    assert truth.total_drift_angstrom == pytest.approx(12.0, abs=1e-9)
    assert truth.frame_shifts_angstrom[0] == (0.0, 0.0)
    dx, dy = np.array(truth.frame_shifts_angstrom[-1])
    assert math.degrees(math.atan2(dy, dx)) == pytest.approx(30.0, abs=20.0)
    # The specimen really moves by the recorded shift: phase correlation of the first and last frames.
    a, b = (np.fft.fft2(f - f.mean()) for f in frames[[0, -1]].astype(np.float64))
    cross = b * np.conj(a)
    corr = np.fft.ifft2(cross / np.maximum(np.abs(cross), 1e-9)).real
    peak = np.unravel_index(np.argmax(corr), corr.shape)
    found = [((p + n // 2) % n) - n // 2 for p, n in zip(peak, corr.shape, strict=True)]
    assert found[1] == pytest.approx(dx, abs=1.0) and found[0] == pytest.approx(dy, abs=1.0)


def test_early_drift_covers_the_first_four_electrons():
    _, truth = simulate_movie(_spec(n_frames=20, dose_e_per_angstrom2=50.0, drift_total_angstrom=20.0),
                              np.random.default_rng(2))
    steps = np.hypot(*np.diff(np.array(truth.frame_shifts_angstrom), axis=0).T)
    assert truth.early_drift_angstrom == pytest.approx(steps[0])  # 2.5 e/Å² per frame: one step
    _, truth = simulate_micrograph(_spec(n_frames=40, dose_e_per_angstrom2=20.0, drift_total_angstrom=20.0),
                                   np.random.default_rng(2))
    steps = np.hypot(*np.diff(np.array(truth.frame_shifts_angstrom), axis=0).T)
    assert truth.early_drift_angstrom == pytest.approx(steps[:8].sum())  # 0.5 e/Å² per frame


def test_particle_truth_count_density_and_aggregation():
    spec = _spec(shape=(512, 512), pixel_size_angstrom=5.0, particles_per_um2=1500, particle_diameter_angstrom=150)
    _, truth = simulate_micrograph(spec, np.random.default_rng(7))
    centres = np.array(truth.particle_centres_px)
    assert truth.particle_count == len(centres)
    assert np.all((centres >= -0.5) & (centres < 511.5))
    assert truth.particles_per_um2 == pytest.approx(1500, rel=0.3)
    gaps = _nearest_neighbour(centres) * 5.0
    assert gaps.min() >= 150 - 1e-6  # singles never overlap
    _, clumped = simulate_micrograph(spec.model_copy(update={"aggregation": 0.8}), np.random.default_rng(7))
    assert np.mean(_nearest_neighbour(np.array(clumped.particle_centres_px)) * 5.0 < 150) > 0.5
    assert "aggregated particles (80% of them in clumps)" in clumped.reasons


def _nearest_neighbour(xy: np.ndarray) -> np.ndarray:
    d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(d, np.inf)
    return d.min(axis=1)


def test_verdict_lists_each_failed_criterion():
    bad = _spec(ice_nm=150.0, crystalline_fraction=0.5, drift_total_angstrom=40.0, particles_per_um2=0.0,
                carbon_fraction=0.6)
    _, truth = simulate_micrograph(bad, np.random.default_rng(0))
    assert not truth.good and truth.crystalline and not truth.empty
    assert len(truth.reasons) == 5
    assert any("thick" in r for r in truth.reasons) and any("drift" in r for r in truth.reasons)
    assert set(TRUTH_VERDICT) >= {"ice_nm_min", "ice_nm_max", "total_drift_angstrom_max"}
    assert truth.b_factor_angstrom2 == default_b_factor(150.0, 40.0)
    _, fixed = simulate_micrograph(bad.model_copy(update={"b_factor_angstrom2": 80.0}), np.random.default_rng(0))
    assert fixed.b_factor_angstrom2 == 80.0


# ---------------------------------------------------------------------- the image's spectrum


def test_ctf_zeros_sit_where_ctfparams_predicts():
    spec = _spec(shape=(512, 512), ice_nm=30.0, dose_e_per_angstrom2=300.0, drift_total_angstrom=0.0,
                 n_frames=1, defocus_u_angstrom=10000.0, defocus_v_angstrom=10000.0, particles_per_um2=0.0)
    image, _ = simulate_micrograph(spec, np.random.default_rng(11))
    radial = _radial(_power(image)) - image.mean() * image.size  # less the white shot noise
    zeros = _ctf_zeros_px(spec, 512, 0.0)
    for first, second in itertools.pairwise(zeros[:4]):
        k, peak = round(first), round((first + second) / 2)
        window = radial[k - 3 : k + 4]
        assert abs(int(np.argmin(window)) - 3) <= 1  # the rotational average has its minimum there
        assert window.min() < 0.2 * radial[peak - 1 : peak + 2].mean()


def test_astigmatic_zeros_follow_defocus_u_along_the_angle():
    spec = _spec(shape=(512, 512), ice_nm=30.0, dose_e_per_angstrom2=300.0, drift_total_angstrom=0.0,
                 n_frames=1, defocus_u_angstrom=12000.0, defocus_v_angstrom=8000.0, astigmatism_angle_deg=30.0,
                 particles_per_um2=0.0)
    image, _ = simulate_micrograph(spec, np.random.default_rng(11))
    signal = _power(image) - image.mean() * image.size
    s2, azimuth = frequency_grid(image.shape, spec.pixel_size_angstrom, centred=True)
    band = (s2 > 1 / 25**2) & (s2 < 1 / 6**2)

    def zero_to_peak(ctf_spec: ExposureSpec) -> float:
        ctf = np.abs(ctf_spec.ctf().ctf(s2, azimuth))
        return signal[band & (ctf < 0.15)].mean() / signal[band & (ctf > 0.85)].mean()

    assert zero_to_peak(spec) < 0.15
    swapped = spec.model_copy(update={"astigmatism_angle_deg": 120.0})  # U and V exchanged
    assert zero_to_peak(swapped) > 0.5


def _thon_modulation(image: np.ndarray, spec: ExposureSpec) -> float:
    """Correlation of the radial power (30-6 Å) with the CTF²: ~1 with Thon rings, ~0 without."""
    radial = _radial(_power(image))
    n = image.shape[0]
    r = np.arange(len(radial))
    s = r / (n * spec.pixel_size_angstrom)
    band = (s > 1 / 30) & (s < 1 / 6) & (r < n // 2)
    ctf2 = spec.ctf().ctf(s[band] ** 2, 0.0) ** 2
    return float(np.corrcoef(radial[band], ctf2)[0, 1])


def test_empty_hole_shows_no_thon_rings_while_ice_does():
    spec = _spec(shape=(512, 512), drift_total_angstrom=0.0, n_frames=1, ice_nm=30.0)
    ice, _ = simulate_micrograph(spec, np.random.default_rng(2))
    empty, _ = simulate_micrograph(spec.model_copy(update={"ice_nm": 0.0}), np.random.default_rng(2))
    assert _thon_modulation(ice, spec) > 0.5
    assert abs(_thon_modulation(empty, spec)) < 0.35  # pure shot noise: ~N(0, 0.12)


def test_crystalline_ice_has_a_peak_at_3_67_angstrom():
    def peak_ratio(image):
        radial = _radial(_power(image))
        k = round(image.shape[0] * 1.0 / 3.67)
        return radial[k - 1 : k + 2].mean() / np.r_[radial[k - 9 : k - 4], radial[k + 5 : k + 10]].mean()

    spec = _spec(shape=(512, 512), drift_total_angstrom=0.0, n_frames=1)
    vitreous, _ = simulate_micrograph(spec, np.random.default_rng(1))
    crystal_spec = spec.model_copy(update={"crystalline_fraction": 1.0})
    crystalline, truth = simulate_micrograph(crystal_spec, np.random.default_rng(1))
    assert truth.crystalline and "crystalline ice over 100% of the field" in truth.reasons
    assert peak_ratio(crystalline) > 1.4
    assert peak_ratio(vitreous) < 1.25


def test_carbon_edge_covers_its_fraction_and_keeps_particles_out():
    spec = _spec(shape=(256, 256), pixel_size_angstrom=4.0, drift_total_angstrom=0.0, n_frames=1,
                 carbon_fraction=0.35, particles_per_um2=1500, dose_e_per_angstrom2=200.0)
    image, truth = simulate_micrograph(spec, np.random.default_rng(4))
    from scipy.ndimage import gaussian_filter

    smooth = gaussian_filter(image, 4)
    vacuum_ice = 200.0 * 16 * math.exp(-spec.ice_nm / LAMBDA_ICE_NM)
    dark = smooth < 0.8 * vacuum_ice  # carbon passes exp(-20/40) = 0.61 of the ice's beam
    assert dark.mean() == pytest.approx(0.35, abs=0.06)
    centres = np.rint(np.array(truth.particle_centres_px)).astype(int)
    on_carbon = dark[centres[:, 1], centres[:, 0]].mean()
    assert on_carbon < 0.2


# ---------------------------------------------------------------------- drift shape


def _read_global_shifts(path: Path) -> np.ndarray:
    """(x, y) shifts in px from the data_global_shift loop of a RELION motion STAR file."""
    block = path.read_text().split("data_global_shift", 1)[1].split("data_", 1)[0]
    rows = [line.split() for line in block.splitlines()]
    return np.array([[float(v) for v in r[1:3]] for r in rows if len(r) == 3 and r[0].isdigit()])


def _shape_statistics(xy: np.ndarray) -> tuple[float, float]:
    """Straightness (path / chord) and the ratio of first- to last-quarter speed."""
    steps = np.hypot(*np.diff(xy, axis=0).T)
    q = len(steps) // 4
    return steps.sum() / np.hypot(*(xy[-1] - xy[0])), steps[:q].mean() / steps[-q:].mean()


def test_drift_trajectory_is_shaped_like_real_movies():
    stars = sorted(DRIFT_STARS.glob("*.star")) if DRIFT_STARS.is_dir() else []
    if not stars:
        pytest.skip(f"real drift data {DRIFT_STARS} is not beside the repository")
    real = np.array([_shape_statistics(_read_global_shifts(p)) for p in stars])
    rng = np.random.default_rng(0)
    simulated = []
    for _ in range(60):
        xy = drift_trajectory(rng, 24, 14.0, rng.uniform(0, 360))
        assert np.hypot(*np.diff(xy, axis=0).T).sum() == pytest.approx(14.0)
        simulated.append(_shape_statistics(xy))
    straight, speed_ratio = np.mean(simulated, axis=0)
    assert real[:, 0].min() - 0.01 <= straight <= real[:, 0].max() + 0.01
    assert real[:, 1].min() * 0.9 <= speed_ratio <= real[:, 1].max() * 1.1


def test_still_specimen_has_no_trajectory():
    assert np.all(drift_trajectory(np.random.default_rng(0), 10, 0.0, 45.0) == 0)
    assert drift_trajectory(np.random.default_rng(0), 1, 0.0, 45.0).shape == (1, 2)


# ---------------------------------------------------------------------- drawing specs


def test_random_exposure_specs_span_the_benchmark_domain():
    rng = np.random.default_rng(0)
    specs = [random_exposure_spec(rng) for _ in range(400)]
    mean_defocus = np.array([(s.defocus_u_angstrom + s.defocus_v_angstrom) / 2 for s in specs])
    astig = np.array([abs(s.defocus_u_angstrom - s.defocus_v_angstrom) for s in specs])
    ice = np.array([s.ice_nm for s in specs])
    assert mean_defocus.min() >= 5000 and mean_defocus.max() <= 40000 and astig.max() <= 2000
    assert np.all((ice == 0) | ((ice >= 10) & (ice <= 150)))
    assert 0.02 < np.mean(ice == 0) < 0.1
    assert 0.05 < np.mean([s.crystalline_fraction > 0 for s in specs]) < 0.16
    assert 0.05 < np.mean([s.carbon_fraction > 0 for s in specs]) < 0.16
    assert all(s.cs_mm == 2.7 for s in specs if s.kv == 300) and {s.kv for s in specs} == {200.0, 300.0}
    assert all(0 <= s.drift_total_angstrom <= 50 and 100 <= s.particle_diameter_angstrom <= 250 for s in specs)
    assert specs[0].shape == (2048, 2048) and specs[0].n_frames == 20


def _hole(defect: HoleDefect, ice_nm: float, quality: float) -> HoleTruth:
    return HoleTruth(id="h_0_0_0", square_id="sq_0_0", centre_um=(0.0, 0.0), radius_um=0.6, axes_um=(0.6, 0.6),
                     angle_deg=0.0, ice_nm=ice_nm, defect=defect, quality=quality)


def test_exposure_spec_for_hole_follows_the_hole():
    rng = np.random.default_rng(0)
    empty = exposure_spec_for_hole(_hole(HoleDefect.EMPTY, 0.0, 0.0), rng, shape=(128, 128))
    assert empty.ice_nm == 0 and empty.shape == (128, 128)
    _, truth = simulate_micrograph(empty, rng)
    assert truth.empty and not truth.good
    thick = exposure_spec_for_hole(_hole(HoleDefect.THICK, 300.0, 0.05), rng, shape=(128, 128))
    _, truth = simulate_micrograph(thick, rng)
    assert thick.ice_nm > 200 and not truth.good and any("thick" in r for r in truth.reasons)
    good = [exposure_spec_for_hole(_hole(HoleDefect.GOOD, 40.0, 0.95), rng) for _ in range(50)]
    assert np.median([s.particles_per_um2 for s in good]) > 300
    assert np.mean([s.aggregation < 0.5 and s.crystalline_fraction == 0 for s in good]) > 0.8
    assert all(s.carbon_fraction == 0 for s in good)
    edge = exposure_spec_for_hole(_hole(HoleDefect.GOOD, 40.0, 0.95), rng, offset_um=(0.55, 0.0))
    assert 0 < edge.carbon_fraction < 0.5
    poor = [exposure_spec_for_hole(_hole(HoleDefect.CONTAMINATED, 40.0, 0.05), rng) for _ in range(50)]
    assert np.mean([s.crystalline_fraction > 0 for s in poor]) > 0.4
    assert np.mean([s.aggregation >= 0.4 for s in poor]) > 0.4
