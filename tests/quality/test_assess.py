import json

import numpy as np
import pytest
from typer.testing import CliRunner

from gridscout.cli import app
from gridscout.io.mrc import write_mrc
from gridscout.model.optics import CtfParams
from gridscout.quality.assess import Criteria, Exposure, ExposureKind, Verdict, assess
from gridscout.quality.files import assess_file


def _micrograph(make_ctf_micrograph) -> np.ndarray:
    return make_ctf_micrograph(CtfParams(15000, 14500, 40), size=2048, dose=40)


def test_a_good_micrograph_is_good_with_all_metrics(make_ctf_micrograph):
    result = assess(Exposure(_micrograph(make_ctf_micrograph), ExposureKind.MICROGRAPH, 1.0,
                             vacuum_dose_e_per_angstrom2=40 * np.exp(50 / 300)),
                    Criteria(min_particles_per_um2=0))
    assert result.verdict is Verdict.GOOD, result.reasons
    assert result.ctf.defocus_u_angstrom == pytest.approx(15000, rel=0.03)
    assert result.ice_thickness_nm == pytest.approx(50, abs=3)
    assert result.particle_count is not None and result.crystalline_ice_score is not None


def test_thresholds_turn_into_reasons(make_ctf_micrograph):
    result = assess(Exposure(_micrograph(make_ctf_micrograph), ExposureKind.MICROGRAPH, 1.0,
                             vacuum_dose_e_per_angstrom2=400.0), Criteria(min_particles_per_um2=10_000))
    assert result.verdict is Verdict.BAD
    assert any("ice too thick" in r for r in result.reasons)
    assert any("too few particles" in r for r in result.reasons)


def test_a_drifting_movie_reports_its_drift(make_drifting_movie):
    path = np.column_stack([np.linspace(0, 30, 10), np.zeros(10)])
    result = assess(Exposure(make_drifting_movie(path), ExposureKind.MOVIE, 1.0))
    assert result.motion.total_drift_angstrom == pytest.approx(30, abs=1)
    assert any("drift" in r for r in result.reasons)


@pytest.mark.parametrize(("data", "kind", "pixel", "reason"), [
    (np.zeros((512, 512), np.int16), ExposureKind.MICROGRAPH, 1.0, "blank image"),
    (np.full((512, 512), np.nan, np.float32), ExposureKind.MICROGRAPH, 1.0, "NaN"),
    (np.ones((512, 512), np.float32), ExposureKind.MICROGRAPH, None, "pixel size unknown"),
    (np.ones((4, 4, 4, 4), np.float32), ExposureKind.MOVIE, 1.0, "dimensions"),
    (np.ones((512, 512), np.complex64), ExposureKind.MICROGRAPH, 1.0, "unsupported pixel type"),
    (np.random.default_rng(0).random((2, 40, 40)), ExposureKind.MOVIE, 1.0, "at least 2 frames of 64 px"),
])
def test_bad_input_gives_an_unusable_assessment(data, kind, pixel, reason):
    result = assess(Exposure(data, kind, pixel))
    assert result.verdict is Verdict.UNUSABLE
    assert any(reason in r for r in result.reasons)


def test_an_image_without_thon_rings_is_bad(rng):
    result = assess(Exposure(rng.poisson(40, (1024, 1024)).astype(np.int16), ExposureKind.MICROGRAPH, 1.0))
    assert result.verdict is Verdict.BAD and any("no Thon rings" in r for r in result.reasons)


def test_a_thumbnail_is_judged_without_the_ctf_it_cannot_show(make_dark_discs):
    """At 8 Å/px the spectrum ends at 16 Å: an 8 Å fit criterion cannot be met or failed."""
    thumbnail = make_dark_discs(60, 19.0, seed=2, size=512)[0]
    result = assess(Exposure(thumbnail, ExposureKind.MICROGRAPH, 8.0, particle_diameter_angstrom=150.0))
    assert not any("Thon" in r or "CTF" in r for r in result.reasons)
    assert any("CTF not judged" in n for n in result.notes)
    assert any("crystalline ice not measured" in n for n in result.notes)
    assert result.verdict is Verdict.GOOD, result.reasons


def test_a_crystalline_thumbnail_is_told_by_its_grains(make_dark_discs, make_ice_grains):
    """Too coarse for the 3.7 Å reflections, crystalline ice still shows as mottled grains."""
    grains = make_ice_grains(40, size=512, seed=3)  # 320 Å grains
    def judged(transmission):
        thumbnail = make_dark_discs(60, 19.0, seed=2, size=512, transmission=transmission, dose=1000.0, contrast=0.03)[0]
        return assess(Exposure(thumbnail, ExposureKind.MICROGRAPH, 8.0, particle_diameter_angstrom=150.0))

    assert judged(1.0).verdict is Verdict.GOOD, judged(1.0).reasons
    result = judged(grains)
    assert result.grain_contrast > Criteria().max_grain_contrast
    assert result.verdict is Verdict.BAD and any("crystalline or uneven ice" in r for r in result.reasons)


def test_aggregated_particles_make_an_exposure_bad(make_dark_discs, make_rosettes):
    spread = make_dark_discs(56, 40.0, seed=4)[0]
    aggregated = make_rosettes(8, 40.0)
    criteria = Criteria(min_particles_per_um2=0)  # at 10 Å/px the CTF is not judged
    def judged(image):
        return assess(Exposure(image, ExposureKind.MICROGRAPH, 10.0, particle_diameter_angstrom=400.0), criteria)

    assert judged(spread).verdict is Verdict.GOOD, judged(spread).reasons
    result = judged(aggregated)
    assert result.clumped_fraction > criteria.max_clumped_fraction
    assert any("aggregates or crud" in r for r in result.reasons)


# 1.0 Å is what IMOD writes for "unknown", so the files here use 1.06 Å.
def test_files_truncated_or_missing_become_unusable_assessments(tmp_path, make_ctf_micrograph):
    path = write_mrc(tmp_path / "m.mrc", _micrograph(make_ctf_micrograph).astype(np.int16), pixel_size_angstrom=1.06)
    path.write_bytes(path.read_bytes()[: 1024 + 5000])
    assert assess_file(path)[0].verdict is Verdict.UNUSABLE
    assert "no such file" in assess_file(tmp_path / "nothing.mrc")[0].reasons[0]


def test_cli_assesses_an_mrc_micrograph_as_json_with_a_figure(tmp_path, make_ctf_micrograph):
    path = write_mrc(tmp_path / "m.mrc", _micrograph(make_ctf_micrograph).astype(np.int16), pixel_size_angstrom=1.06)
    figure = tmp_path / "fig.png"
    out = CliRunner().invoke(app, ["assess", str(path), "--json", "--figure", str(figure)])
    assert out.exit_code == 0, out.output
    record = json.loads(out.output)
    assert record["kind"] == "micrograph" and record["ctf"]["defocus_u_angstrom"] == pytest.approx(15000 * 1.06**2, rel=0.03)
    assert figure.stat().st_size > 10_000


def test_cli_reads_a_spectrum_and_a_tiff_movie(tmp_path, make_drifting_movie):
    from PIL import Image

    frames = make_drifting_movie(np.column_stack([np.linspace(0, 8, 6), np.zeros(6)]), size=256)
    pages = [Image.fromarray(f) for f in frames]
    pages[0].save(tmp_path / "movie.tif", save_all=True, append_images=pages[1:])
    out = CliRunner().invoke(app, ["assess", str(tmp_path / "movie.tif"), "--pixel-size", "1.0", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["motion"]["total_drift_angstrom"] == pytest.approx(8, abs=1)


def test_cli_exits_non_zero_on_an_unusable_file(tmp_path):
    (tmp_path / "bad.mrc").write_bytes(b"not an mrc file at all")
    out = CliRunner().invoke(app, ["assess", str(tmp_path / "bad.mrc")])
    assert out.exit_code == 1 and "unusable" in out.output
