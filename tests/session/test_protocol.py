import pytest

from gridscout.model.errors import InvalidParameterError
from gridscout.session.protocol import EXAMPLES, Protocol, load_protocol


def test_the_shipped_examples_load():
    screening = load_protocol(EXAMPLES / "screening.toml")
    collection = load_protocol(EXAMPLES / "collection.toml")
    assert screening.kind == "screening" and screening.squares.total == 4 and screening.holes.per_square == 4
    assert collection.kind == "collection" and collection.squares.method == "learned"


def test_overrides_change_only_the_fields_they_name():
    collection = load_protocol(EXAMPLES / "collection.toml")
    slot7 = collection.for_slot(7).quality
    assert slot7.max_ice_nm == 50.0
    assert slot7.max_total_drift_angstrom == collection.quality.max_total_drift_angstrom == 25.0
    assert collection.for_slot(3) == collection
    assert load_protocol(EXAMPLES / "screening.toml").for_slot(12).atlas.tiles == (3, 3)


def test_slots_and_skips():
    p = Protocol.model_validate({"name": "x", "kind": "screening", "slots": [2, 5], "grids": {5: {"skip": True}}})
    assert p.runs_slot(2) and not p.runs_slot(5) and not p.runs_slot(3)


def test_multishot_offsets_lie_on_a_circle_inside_the_hole():
    p = Protocol.model_validate({"name": "x", "kind": "collection", "exposures": {"per_hole": 4,
                                                                                   "shot_radius_fraction": 0.5}})
    offsets = p.exposures.offsets_um(0.6)
    assert len(offsets) == 4 and all(abs((x * x + y * y) ** 0.5 - 0.3) < 1e-9 for x, y in offsets)


@pytest.mark.parametrize(("text", "message"), [
    ('name = "x"\nkind = "imaging"', "kind"),
    ('name = "x"\nkind = "screening"\n[squares]\ngroups = 0', "squares.groups"),
    ('name = "x"\nkind = "screening"\n[quality]\nmin_ice_nm = 200', "min_ice_nm must be below"),
    ('name = "x"\nkind = "screening"\nslots = [1, 1]', "slots"),
    ('name = "x"\nkind = "screening"\n[grids.x.atlas]\ntiles = [2, 2]', "not a slot number"),
    ('name = "x"\nkind = "screening"\n[exposures]\ndefocus_um = [-40]', "defocus"),
    ('name = "x"\nkind = "screening"\ncolour = "blue"', "colour"),
    ('name = "x"\nkind = = "screening"', "not valid TOML"),
])
def test_bad_protocols_name_the_problem(tmp_path, text, message):
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(InvalidParameterError, match=message):
        load_protocol(path)


def test_overrides_are_judged_with_the_values_they_keep():
    with pytest.raises(ValueError, match="slot 3: .*min_ice_nm must be below"):
        Protocol.model_validate({"name": "x", "kind": "screening", "grids": {3: {"quality": {"max_ice_nm": 10}}}})
    thin = Protocol.model_validate({"name": "x", "kind": "screening", "quality": {"min_ice_nm": 5},
                                    "grids": {3: {"quality": {"max_ice_nm": 10}}}})
    assert thin.for_slot(3).quality.max_ice_nm == 10
    with pytest.raises(ValueError, match="colour"):
        Protocol.model_validate({"name": "x", "kind": "screening", "grids": {3: {"atlas": {"colour": 1}}}})


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(InvalidParameterError, match="No such file"):
        load_protocol(tmp_path / "none.toml")
