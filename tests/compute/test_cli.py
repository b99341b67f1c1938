import json

import numpy as np
import pytest
from typer.testing import CliRunner

from gridscout.cli import app
from gridscout.io.mrc import write_mrc


@pytest.fixture
def two_micrographs(tmp_path, rng):
    paths = []
    for i in range(2):
        image = rng.poisson(40, (512, 512)).astype(np.int16)
        paths.append(str(write_mrc(tmp_path / f"m{i}.mrc", image, pixel_size_angstrom=1.1)))
    (tmp_path / "broken.mrc").write_bytes(b"not an mrc")
    return [*paths, str(tmp_path / "broken.mrc")]


@pytest.mark.parametrize("where", [[], ["--dask", "local:2"]])
def test_assess_many_files_here_or_on_a_cluster(two_micrographs, where):
    pytest.importorskip("distributed")
    out = CliRunner().invoke(app, ["assess", *two_micrographs, "--json", *where])
    records = {r["source"]: r for r in map(json.loads, out.output.strip().splitlines())}
    assert set(records) == set(two_micrographs)
    assert records[two_micrographs[2]]["verdict"] == "unusable"
    assert all(records[p]["verdict"] == "bad" for p in two_micrographs[:2])  # shot noise has no Thon rings
    assert out.exit_code == 1  # one file was unusable


def test_a_bad_compute_address_is_one_line(two_micrographs):
    from gridscout.cli import main

    with pytest.raises(SystemExit) as stop:
        import sys

        sys.argv = ["gridscout", "assess", *two_micrographs[:2], "--dask", "nowhere"]
        main()
    assert stop.value.code == 2
