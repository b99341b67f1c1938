import math

import numpy as np
import pytest

from gridscout.io.mrc import read_mrc
from gridscout.model.errors import ImageError
from gridscout.model.optics import CtfParams, electron_wavelength_angstrom
from gridscout.quality.ctf import Microscope, diagnostic_image, fit_ctf
from gridscout.quality.spectrum import AmplitudeSpectrum, _centred_full, amplitude_spectrum


def test_wavelength_matches_the_textbook_values():
    assert electron_wavelength_angstrom(300) == pytest.approx(0.019687, abs=1e-6)
    assert electron_wavelength_angstrom(200) == pytest.approx(0.025079, abs=1e-6)


def test_centred_spectrum_from_the_half_plane_equals_the_full_transform(rng):
    image = rng.standard_normal((64, 64))
    import scipy.fft

    assert np.allclose(_centred_full(np.abs(scipy.fft.rfft2(image))), np.fft.fftshift(np.abs(np.fft.fft2(image))))


@pytest.mark.parametrize(("defocus", "astigmatism", "angle"), [(8000, 0, 0), (15000, 800, 30), (30000, 1500, 125)])
def test_fit_recovers_defocus_and_astigmatism(make_ctf_micrograph, defocus, astigmatism, angle):
    truth = CtfParams(defocus + astigmatism / 2, defocus - astigmatism / 2, angle)
    image = make_ctf_micrograph(truth, size=2048, seed=defocus)
    fit = fit_ctf(amplitude_spectrum(image, 1.0))
    assert fit.rings_found
    assert fit.params.defocus_mean_angstrom == pytest.approx(defocus, rel=0.02)
    assert fit.params.astigmatism_angstrom == pytest.approx(astigmatism, abs=400)
    if astigmatism >= 500:
        assert abs((fit.params.astigmatism_angle_deg - angle + 90) % 180 - 90) < 10
    assert math.isfinite(fit.fit_resolution_angstrom)


def test_fit_resolution_is_worse_with_a_stronger_envelope(make_ctf_micrograph):
    truth = CtfParams(15000, 15000)
    sharp = fit_ctf(amplitude_spectrum(make_ctf_micrograph(truth, size=2048, b_factor=30), 1.0))
    blurred = fit_ctf(amplitude_spectrum(make_ctf_micrograph(truth, size=2048, b_factor=400), 1.0))
    assert blurred.fit_resolution_angstrom > sharp.fit_resolution_angstrom + 1


def test_pure_noise_has_no_rings(rng):
    noise = rng.poisson(40, (1024, 1024)).astype(np.float32)
    assert not fit_ctf(amplitude_spectrum(noise, 1.0)).rings_found


def test_diagnostic_image_has_the_spectrum_shape(make_ctf_micrograph):
    spectrum = amplitude_spectrum(make_ctf_micrograph(CtfParams(15000, 15000)), 1.0)
    image = diagnostic_image(spectrum, fit_ctf(spectrum))
    assert image.shape == spectrum.amplitude.shape and 0 <= image.min() and image.max() <= 1


def test_bad_spectra_are_refused(rng):
    with pytest.raises(ImageError, match="square"):
        AmplitudeSpectrum(np.ones((100, 80), np.float32), 1.0)
    nan = np.ones((128, 128), np.float32)
    nan[3, 3] = np.nan
    with pytest.raises(ImageError, match="NaN"):
        AmplitudeSpectrum(nan, 1.0)
    with pytest.raises(ImageError, match="smaller"):
        amplitude_spectrum(rng.random((200, 200)), 1.0, box=256)


BETAGAL = "highmag/betagal_power_spectra"
BETAGAL_SCOPE = Microscope(kv=200, cs_mm=1.4, amplitude_contrast=0.1)


def _betagal(real_data):
    folder = real_data / "real" / BETAGAL
    if not folder.is_dir():
        pytest.skip(f"{folder} absent")
    for path in sorted(folder.glob("*_PS.mrc")):
        columns = path.with_name(path.stem + "_ctffind4.txt").read_text().splitlines()[-1].split()
        yield read_mrc(path), 0.5 * (float(columns[1]) + float(columns[2]))


def test_real_betagal_spectra_have_thon_rings_fitted_beyond_6_angstrom(real_data):
    for mrc, _ in _betagal(real_data):
        fit = fit_ctf(AmplitudeSpectrum(mrc.data.astype(np.float32), mrc.pixel_size_angstrom), BETAGAL_SCOPE)
        assert fit.rings_found and fit.fit_resolution_angstrom < 6
        assert 0.7e4 < fit.params.defocus_mean_angstrom < 1.2e4  # the rings' own zeros (docs/quality.md)


def test_ctffind_reference_is_reproduced_when_the_spectrum_is_read_as_a_micrograph(real_data):
    """The shipped CTFFIND4 values were fitted to the spectrum *of* the spectrum (docs/quality.md)."""
    for mrc, ctffind_mean in _betagal(real_data):
        fit = fit_ctf(amplitude_spectrum(mrc.data, mrc.pixel_size_angstrom, box=512), BETAGAL_SCOPE)
        assert fit.params.defocus_mean_angstrom == pytest.approx(ctffind_mean, rel=0.03)
