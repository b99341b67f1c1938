import math

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from gridscout.model.errors import ImageError
from gridscout.quality.assess import Criteria
from gridscout.quality.ice import ICE_MEAN_FREE_PATH_NM, crystalline_ice_score, grain_contrast, ice_thickness_nm
from gridscout.quality.particles import pick_particles
from gridscout.quality.spectrum import amplitude_spectrum


def test_ice_thickness_inverts_the_attenuation():
    assert ice_thickness_nm(50 * math.exp(-60 / ICE_MEAN_FREE_PATH_NM), 50) == pytest.approx(60)
    assert ice_thickness_nm(55, 50) == 0.0
    with pytest.raises(ImageError):
        ice_thickness_nm(float("nan"), 50)


def _fringes(rng, spacing: float, strength: float) -> np.ndarray:
    yy, xx = np.mgrid[:1024, :1024].astype(np.float32)
    image = rng.poisson(30, (1024, 1024)).astype(np.float32)
    domain = (xx < 600) & (yy < 600)
    for angle in (0.3, 0.3 + math.pi / 3, 0.3 + 2 * math.pi / 3):
        k = 2 * math.pi / spacing
        image += strength * domain * np.cos(k * (xx * math.cos(angle) + yy * math.sin(angle)))
    return image


def test_crystalline_score_sees_ice_spacings_only(rng):
    vitreous = crystalline_ice_score(amplitude_spectrum(_fringes(rng, 3.67, 0.0), 1.0))
    crystal = crystalline_ice_score(amplitude_spectrum(_fringes(rng, 3.67, 1.5), 1.0))
    other = crystalline_ice_score(amplitude_spectrum(_fringes(rng, 5.0, 1.5), 1.0))
    assert vitreous < 0.1 and other < 0.1
    assert crystal > 0.3


def test_crystalline_score_needs_a_fine_enough_pixel(rng):
    assert crystalline_ice_score(amplitude_spectrum(rng.random((512, 512)), 2.0)) is None


def test_grain_contrast_tells_mottled_ice_from_particles_in_even_ice(make_dark_discs, make_ice_grains):
    """Crystalline grains (150 px, up to 6% Bragg loss) mottle the field; particles and a carbon edge do not."""
    limit = Criteria().max_grain_contrast
    even = make_dark_discs(60, 40.0, seed=2, dose=200.0, contrast=0.03)[0]
    grains = make_dark_discs(60, 40.0, seed=2, dose=200.0, contrast=0.03, transmission=make_ice_grains(150, seed=2))[0]
    edge = even.copy()
    edge[:, :300] *= 0.7  # carbon film over a third of the field
    assert grain_contrast(even, 2.0, 80.0)[0] < limit / 2
    assert grain_contrast(edge, 2.0, 80.0)[0] < limit / 2
    assert grain_contrast(grains, 2.0, 80.0)[0] > limit


def test_grain_contrast_needs_shot_noise_and_room(make_dark_discs):
    image = make_dark_discs(60, 40.0, seed=2, dose=200.0, contrast=0.03)[0]
    contrast, why = grain_contrast(gaussian_filter(image, 6.0), 2.0, 80.0)  # smoothed over a sixth of a particle, as denoised
    assert contrast is None and "low-pass filtered" in why
    contrast, why = grain_contrast(image[:300, :300], 2.0, 80.0)
    assert contrast is None and "particle diameters across" in why


@pytest.mark.parametrize("count", [0, 25, 60])
def test_picker_counts_discs(make_dark_discs, count):
    image, centres = make_dark_discs(count, 40.0, seed=count) if count else (
        np.random.default_rng(1).poisson(30, (1024, 1024)).astype(np.float32), np.zeros((0, 2)))
    picks = pick_particles(image, 2.0, 80.0)
    assert abs(picks.count - count) <= max(2, 0.1 * count)
    if count:
        nearest = np.min(np.hypot(*(picks.centres_px[:, None, :] - centres[None]).transpose(2, 0, 1)), axis=1)
        assert np.median(nearest) < 4


def test_picker_refuses_impossible_sizes(rng):
    with pytest.raises(ImageError, match="too small or too large"):
        pick_particles(rng.random((256, 256)), 1.0, 2.0)



def _discs_on_texture(make_dark_discs, count: int, seed: int) -> np.ndarray:
    """Faint dark discs on a background textured at the particle's scale, as a denoised micrograph is."""
    image = make_dark_discs(count, 40.0, seed=seed, contrast=0.08, dose=400.0)[0] if count else np.full((1024, 1024), 400.0)
    texture = gaussian_filter(np.random.default_rng(seed + 100).standard_normal(image.shape), 8.0)
    return image + 11.0 * texture / texture.std()  # at the old fixed threshold, half the discs were lost


@pytest.mark.parametrize("count", [0, 60])
def test_picker_threshold_follows_a_textured_background(make_dark_discs, count):
    picks = pick_particles(_discs_on_texture(make_dark_discs, count, seed=7), 2.0, 80.0)
    assert abs(picks.count - count) <= max(3, 0.15 * count)


def test_picker_ignores_padded_edges(make_dark_discs):
    """Aligned sums and denoisers pad edges by repeating a row: the stripes are not particles."""
    image, centres = make_dark_discs(40, 40.0, seed=3)
    padded = np.pad(image, ((0, 90), (120, 0)), mode="edge")
    picks = pick_particles(padded, 2.0, 80.0)
    assert abs(picks.count - 40) <= 4
    assert np.all(picks.centres_px[:, 0] > 120) and np.all(picks.centres_px[:, 1] < 1024)


def test_clumps_are_told_from_spread_particles(make_dark_discs, make_rosettes):
    limit = Criteria().max_clumped_fraction
    spread = make_dark_discs(56, 40.0, seed=4)[0]
    few_strong = make_dark_discs(5, 40.0, seed=5, contrast=0.6)[0]  # bright noise-relative, still single
    assert pick_particles(spread, 2.0, 80.0).clumped_fraction <= limit
    assert pick_particles(few_strong, 2.0, 80.0).clumped_fraction <= limit
    assert pick_particles(make_rosettes(6, 40.0), 2.0, 80.0).clumped_fraction > limit
