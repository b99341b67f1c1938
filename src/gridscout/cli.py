"""The `gridscout` command. Thin: parse, call the packages, turn errors into one line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from . import __version__
from .model.errors import GridScoutError

if TYPE_CHECKING:
    from .compute import Executor
    from .session.store import Store

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="GridScout: automated cryo-EM grid screening and data collection.",
)

DEFAULT_REAL_DATA = Path("../shared/data/real")


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Seed of the simulated cassette and microscope.")] = 0,
    out: Annotated[Path, typer.Option(help="Session directory: images, database and report.")] = Path("gridscout-demo"),
    grids: Annotated[int, typer.Option(help="Grids in the simulated cassette.")] = 4,
) -> None:
    """Screen a simulated cassette end to end (4 grids) and write the report."""
    from .session.demo import run_demo

    run_demo(seed=seed, out=out, grids=grids, say=typer.echo)


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="Dataset directory to write.")] = Path("simulated"),
    grids: Annotated[int, typer.Option(help="Grids in the cassette, 1-12.")] = 4,
    seed: Annotated[int, typer.Option(help="Seed: the same seed writes the same dataset.")] = 0,
    squares: Annotated[int, typer.Option(help="Square images per grid.")] = 10,
    views: Annotated[int, typer.Option(help="Medium-magnification hole images per square.")] = 1,
    figure: Annotated[Path | None, typer.Option(help="Write the real-vs-simulated figure (PNG) and stop.")] = None,
    real_data: Annotated[Path, typer.Option(help="Folder of real images for --figure.")] = DEFAULT_REAL_DATA,
    quiet: Annotated[bool, typer.Option(help="Print only the summary.")] = False,
) -> None:
    """Write a simulated dataset: atlas montages, square and hole images (MRC) and truth.json."""
    if figure is not None:
        from .session.realism import draw_figure, real_panels, simulated_panels

        summary = draw_figure(real_panels(real_data) + simulated_panels(seed), figure)
        for row, stats in summary.items():
            for s in stats:
                typer.echo(f"{row:7s} {s['title'][:60]:60s} pitch {s['pitch_px']} px  dark {s['dark_fraction']}")
        typer.echo(f"figure written to {figure} (figures in {figure.with_suffix('.json')})")
        return
    from .scope.simdata import simulate_dataset

    truth = simulate_dataset(out, grids=grids, seed=seed, squares_per_grid=squares, views_per_square=views,
                             progress=None if quiet else typer.echo)
    images = sum(len(g.images) for g in truth.grids)
    typer.echo(f"wrote {images} images of {len(truth.grids)} grids and truth.json to {out}")


@app.command()
def lowmag(
    atlas: Annotated[Path, typer.Argument(help="Atlas image: MRC (int16/float), TIFF, PNG or JPEG.")],
    pixel_size: Annotated[float | None, typer.Option(help="Pixel size in nm, if the header lacks it.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the squares as JSON, best first.")] = False,
    overlay: Annotated[Path | None, typer.Option(help="Write a PNG with the squares coloured by score.")] = None,
    groups: Annotated[int, typer.Option(help="Groups for the k x n selection policy.")] = 3,
) -> None:
    """Find, rank and group the grid squares of an atlas."""
    import json

    from .session.lowmag import analyse_atlas

    found, records = analyse_atlas(atlas, pixel_size_nm=pixel_size, groups=groups, overlay=overlay)
    if json_out:
        typer.echo(json.dumps(records))
        return
    if not found:
        typer.echo(f"no squares: {found.reason}")
        return
    whole = sum(not r["partial"] for r in records)
    size = "unknown" if found.pixel_size_angstrom is None else f"{found.pixel_size_angstrom / 10:.0f} nm/px"
    typer.echo(f"{len(records)} squares ({whole} whole), pitch {found.pitch_px:.1f} px, "
               f"grid angle {found.angle_deg:.1f}°, pixel size {size}")
    for note in found.notes:
        typer.echo(f"note: {note}")
    for r in records[:10]:
        typer.echo(f"  score {r['score']:.3f}  centre ({r['center'][0]:.0f}, {r['center'][1]:.0f})  "
                   f"group {r['group']}{'  partial' if r['partial'] else ''}")


@app.command()
def medmag(
    image: Annotated[Path, typer.Argument(help="Square or hole image: MRC, TIFF, PNG or JPEG.")],
    pixel_size: Annotated[float | None, typer.Option(help="Pixel size in nm (reported only: holes are found without it).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the holes as JSON, best first.")] = False,
    with_lattice: Annotated[bool, typer.Option("--with-lattice", help="With --json: an object with the lattice and the holes.")] = False,
    overlay: Annotated[Path | None, typer.Option(help="Write a PNG with the holes coloured by score.")] = None,
) -> None:
    """Find and rank the holes of a medium-magnification image, on any lattice."""
    import json

    import numpy as np

    from .session.medmag import analyse_medmag, lattice_record

    found, records = analyse_medmag(image, overlay=overlay)
    if json_out:
        if with_lattice:
            typer.echo(json.dumps({"lattice": lattice_record(found), "holes": records,
                                   "reason": found.reason or None, "pixel_size_nm": pixel_size}))
        else:
            typer.echo(json.dumps(records))
        return
    if not found:
        typer.echo(f"no holes: {found.reason}")
        return
    lattice = found.lattice
    where = f"{lattice.kind} lattice, pitch {lattice.pitch_px:.1f} px" if lattice else "no lattice (blobs)"
    typer.echo(f"{len(records)} holes ({sum(not r['partial'] for r in records)} whole), {where}, "
               f"radius {np.median([r['radius'] for r in records]):.1f} px, holes "
               f"{'brighter' if found.contrast > 0 else 'darker'} than the film")
    for note in found.notes:
        typer.echo(f"note: {note}")
    for r in records[:10]:
        typer.echo(f"  score {r['score']:.3f}  centre ({r['center'][0]:.0f}, {r['center'][1]:.0f})  "
                   f"ice ~{r['ice_nm']:.0f} nm{'  partial' if r['partial'] else ''}")


@app.command()
def assess(
    files: Annotated[list[Path], typer.Argument(help="Movies (MRC stack, TIFF), micrographs (MRC, TIFF, PNG, JPEG) or amplitude spectra.")],
    pixel_size: Annotated[float | None, typer.Option(help="Pixel size in Å of the micrograph (overrides the header).")] = None,
    kv: Annotated[float, typer.Option(help="Accelerating voltage, kV.")] = 300.0,
    cs: Annotated[float, typer.Option(help="Spherical aberration, mm.")] = 2.7,
    amplitude_contrast: Annotated[float, typer.Option(help="Amplitude contrast fraction.")] = 0.07,
    dose: Annotated[float | None, typer.Option(help="Total dose through vacuum, e-/Å² (gives the ice thickness).")] = None,
    diameter: Annotated[float, typer.Option(help="Expected particle diameter, Å.")] = 150.0,
    kind: Annotated[str, typer.Option(help="auto, movie, micrograph or spectrum.")] = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="Print each assessment as JSON (one line per file with several files).")] = False,
    figure: Annotated[Path | None, typer.Option(help="Write a PNG: micrograph, CTF diagnostic, 1-D fit, drift (one file only).")] = None,
    dask: Annotated[str | None, typer.Option(help="Run on Dask: local:N starts N workers here, tcp://host:8786 joins a cluster.")] = None,
    retries: Annotated[int, typer.Option(help="Extra attempts for a file whose assessment fails.")] = 2,
) -> None:
    """Assess high-magnification exposures: drift, CTF, ice, particles, verdict."""
    from .quality.assess import ExposureKind

    if kind not in ("auto", *ExposureKind):
        raise GridScoutError(f"--kind must be auto, movie, micrograph or spectrum, not {kind!r}")
    if figure is not None and len(files) > 1:
        raise GridScoutError("--figure needs a single file")
    options = {"pixel_size_angstrom": pixel_size, "kind": None if kind == "auto" else ExposureKind(kind),
               "kv": kv, "cs_mm": cs, "amplitude_contrast": amplitude_contrast,
               "vacuum_dose_e_per_angstrom2": dose, "particle_diameter_angstrom": diameter}
    if len(files) == 1 and dask is None:
        raise typer.Exit(_assess_one(files[0], options, json_out, figure))
    raise typer.Exit(_assess_many(files, options, json_out, dask, retries))


def _assess_one(path: Path, options: dict, json_out: bool, figure: Path | None) -> int:
    from .quality.assess import Verdict
    from .quality.figure import write_figure
    from .quality.files import assess_file_with

    result, details = assess_file_with(path, **options)
    if figure is not None and result.verdict is not Verdict.UNUSABLE:
        write_figure(result, details, figure)
    typer.echo(result.model_dump_json(indent=1) if json_out else _assessment_text(result))
    return 1 if result.verdict is Verdict.UNUSABLE else 0


def _assess_many(paths: list[Path], options: dict, json_out: bool, address: str | None, retries: int) -> int:
    """Assess files on the chosen executor, printing each result as it completes."""
    import json

    from .compute import connect
    from .compute.executors import ComputeAddressError
    from .quality.assess import Assessment, Verdict
    from .quality.files import assessment_record

    try:
        executor = connect(address, retries=retries)
    except ComputeAddressError as err:
        raise GridScoutError(str(err)) from None
    unusable = 0
    with executor:
        for path in paths:
            executor.submit(assessment_record, str(path), key=str(path), **options)
        for outcome in executor.outcomes():
            if not outcome.ok:
                unusable += 1
                typer.echo(f"{outcome.key}: failed after {outcome.attempts} attempts: {outcome.error}")
                continue
            result = Assessment.model_validate(outcome.value)
            unusable += result.verdict is Verdict.UNUSABLE
            typer.echo(json.dumps(outcome.value) if json_out else _assessment_text(result))
    return 1 if unusable else 0


def _assessment_text(a) -> str:  # noqa: ANN001
    lines = [f"{a.source}: {a.verdict.value}" + (f" ({'; '.join(a.reasons)})" if a.reasons else "")]
    if a.motion:
        lines.append(f"  drift {a.motion.total_drift_angstrom:.1f} Å (early {a.motion.early_drift_angstrom:.1f} Å)")
    if a.ctf:
        res = f"{a.ctf.fit_resolution_angstrom:.1f} Å" if a.ctf.fit_resolution_angstrom else "no rings"
        lines.append(f"  defocus {a.ctf.defocus_u_angstrom / 1e4:.3f} / {a.ctf.defocus_v_angstrom / 1e4:.3f} µm "
                     f"at {a.ctf.astigmatism_angle_deg:.0f}°, fit to {res}")
    if a.ice_thickness_nm is not None:
        lines.append(f"  ice {a.ice_thickness_nm:.0f} nm")
    if a.crystalline_ice_score is not None:
        lines.append(f"  crystalline-ice score {a.crystalline_ice_score:.2f}")
    if a.grain_contrast is not None:
        lines.append(f"  ice grain contrast {a.grain_contrast:.1f} x the shot noise")
    if a.particle_count is not None:
        clumps = f", {a.clumped_fraction:.1%} of the field in clumps" if a.clumped_fraction is not None else ""
        lines.append(f"  {a.particle_count} particles ({a.particles_per_um2:.0f}/µm²){clumps}")
    lines.extend(f"  note: {note}" for note in a.notes)
    return "\n".join(lines)


@app.command()
def run(
    protocol: Annotated[Path, typer.Argument(help="Protocol file (TOML or YAML); see docs/protocols.md.")],
    out: Annotated[Path, typer.Option(help="Session directory: images and, by default, the database.")] = Path("session"),
    scope: Annotated[str, typer.Option(help="Microscope: 'sim' (simulated) or serialem://host:48888.")] = "sim",
    cassette: Annotated[int, typer.Option(help="With --scope sim: grids in the simulated cassette.")] = 12,
    seed: Annotated[int, typer.Option(help="With --scope sim: seed of the simulated cassette.")] = 0,
    db: Annotated[str | None, typer.Option(help="Database URL (default: SQLite in the session directory).")] = None,
    dask: Annotated[str | None, typer.Option(help="Assess exposures on Dask: local:N or tcp://host:8786.")] = None,
    record_px: Annotated[int | None, typer.Option(help="With --scope sim: record camera size in px (default 4096).")] = None,
    frames: Annotated[int | None, typer.Option(help="With --scope sim: frames per record movie (default 40).")] = None,
) -> None:
    """Run a protocol over a cassette: screen every grid, assess every exposure, record it all."""
    from .scope import open_scope
    from .scope.simsetup import SimulatedSetup
    from .session.engine import Engine
    from .session.protocol import load_protocol
    from .sim.cassette import check_seed

    plan = load_protocol(protocol)
    check_seed(seed)
    if scope == "sim":
        scope = SimulatedSetup.checked(cassette=cassette, seed=seed, record_px=record_px, frames=frames).address()
    microscope = open_scope(scope)
    store = _open_store(out, db)
    with _executor(dask) as executor:
        engine = Engine(microscope, plan, out, store=store, executor=executor, say=typer.echo, seed=seed,
                        scope_address=scope)
        session_id = engine.run()
    _finish(store, out, session_id)


@app.command()
def resume(
    session: Annotated[Path, typer.Argument(help="Session directory of the run to continue.")],
    db: Annotated[str | None, typer.Option(help="Database URL, when the store is not the directory's SQLite.")] = None,
    session_id: Annotated[str | None, typer.Option("--id", help="Which session (default: the latest unfinished).")] = None,
    dask: Annotated[str | None, typer.Option(help="Assess exposures on Dask: local:N or tcp://host:8786.")] = None,
) -> None:
    """Continue a session after a crash, kill or stop: nothing recorded is taken again, nothing is lost."""
    from .scope import open_scope
    from .session.engine import Engine, unfinished_session
    from .session.protocol import Protocol

    store = _open_store(session, db, must_exist=True)
    row = unfinished_session(store, session_id)
    with _executor(dask) as executor:
        engine = Engine(open_scope(row.scope), Protocol.model_validate(row.protocol), session, store=store,
                        executor=executor, say=typer.echo, seed=row.seed or 0, scope_address=row.scope)
        engine.run(session_id=row.id)
    _finish(store, session, row.id)


def _open_store(directory: Path, db: str | None, *, must_exist: bool = False) -> Store:
    from .session.store import DATABASE_NAME, Store

    if must_exist and db is None and not (directory / DATABASE_NAME).is_file():
        raise GridScoutError(f"{directory}: no {DATABASE_NAME} here (give the session directory, or --db)")
    return Store(db) if db else Store.in_directory(directory)


def _executor(address: str | None) -> Executor:
    from .compute import connect
    from .compute.executors import ComputeAddressError

    try:
        return connect(address)
    except ComputeAddressError as err:
        raise GridScoutError(str(err)) from None


def _finish(store: Store, directory: Path, session_id: str) -> None:
    from .session.report import write_report

    report = write_report(store, directory, session_id=session_id)
    typer.echo(f"session {session_id} recorded in {store.url}; report {report}")


@app.command()
def report(
    session: Annotated[Path, typer.Argument(help="Session directory (holding session.sqlite, unless --db).")],
    db: Annotated[str | None, typer.Option(help="Database URL, when the store is not the directory's SQLite.")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder for report.html, report.json and figures (default SESSION/report).")] = None,
) -> None:
    """Write the session's report: per grid counts, quality, microscope time and the collect verdict."""
    from .session.report import write_report

    store = _open_store(session, db, must_exist=True)
    typer.echo(f"report written to {write_report(store, session, out)}")


train_app = typer.Typer(help="Regenerate the shipped models from simulated data, or fine-tune them on datasets.",
                        no_args_is_help=True)
app.add_typer(train_app, name="train")


@train_app.command("squares")
def train_squares(
    atlases: Annotated[int, typer.Option(help="Simulated training atlases.")] = 150,
    held_out: Annotated[int, typer.Option(help="Held-out atlases to report the ROC AUC on.")] = 25,
    seed: Annotated[int, typer.Option(help="Seed of the training (and held-out) streams.")] = 0,
    size: Annotated[int, typer.Option(help="Atlas side in pixels.")] = 2048,
    out: Annotated[Path, typer.Option(help="Model file to write.")] = Path("squares-v1.json"),
    data: Annotated[list[Path] | None, typer.Option(help="Fine-tune the ranker on exported datasets (repeatable).")] = None,
    base: Annotated[Path | None, typer.Option(help="With --data: the model to fine-tune (default: the shipped one).")] = None,
    trees: Annotated[int, typer.Option(help="With --data: trees to add.")] = 50,
) -> None:
    """Train the square ranker on simulated atlases, or fine-tune it on datasets (needs the [train] extra)."""
    from .session.train_cli import fine_tune_ranker, train_square_ranker
    from .sim.cassette import check_seed

    check_seed(seed)
    if data:
        fine_tune_ranker("square", data, out, base=base, trees=trees, seed=seed, say=typer.echo)
        return
    if atlases < 1 or held_out < 0 or size < 256:
        raise GridScoutError("need at least 1 training atlas, held-out >= 0 and atlas size >= 256 px")
    train_square_ranker(out, atlases=atlases, held_out=held_out, seed=seed, size_px=size, say=typer.echo)


@train_app.command("holes")
def train_holes(
    examples: Annotated[int, typer.Option(help="Simulated (view, mask) examples for the detector.")] = 3000,
    steps: Annotated[int, typer.Option(help="Detector training steps (batch 16).")] = 1500,
    images: Annotated[int, typer.Option(help="Simulated images for the hole ranker.")] = 120,
    held_out: Annotated[int, typer.Option(help="Held-out images to report the ranker's ROC AUC on.")] = 30,
    size: Annotated[int, typer.Option(help="Side of the ranker's images, pixels.")] = 1024,
    seed: Annotated[int, typer.Option(help="Seed of the training (and held-out) streams.")] = 0,
    out: Annotated[Path, typer.Option(help="Folder for holes-unet-v1.onnx and holes-v1.json.")] = Path("."),
    data: Annotated[list[Path] | None, typer.Option(help="Fine-tune the hole ranker on exported datasets (repeatable).")] = None,
    base: Annotated[Path | None, typer.Option(help="With --data: the ranker to fine-tune (default: the shipped one).")] = None,
    trees: Annotated[int, typer.Option(help="With --data: trees to add.")] = 50,
) -> None:
    """Train the hole detector and ranker on simulated images, or fine-tune the ranker on datasets (needs [train])."""
    from .session.train_cli import fine_tune_ranker, train_hole_detector, train_hole_ranker
    from .sim.cassette import check_seed

    check_seed(seed)
    if data:
        fine_tune_ranker("hole", data, out / "holes-v1.json", base=base, trees=trees, seed=seed, say=typer.echo)
        return
    if examples < 1 or steps < 1 or images < 1 or held_out < 0 or size < 128:
        raise GridScoutError("need examples, steps and images >= 1, held-out >= 0 and image size >= 128 px")
    detector = out / "holes-unet-v1.onnx"
    train_hole_detector(detector, examples=examples, steps=steps, seed=seed, say=typer.echo)
    train_hole_ranker(out / "holes-v1.json", images=images, held_out=held_out, seed=seed, detector=detector,
                      size_px=size, say=typer.echo)


@app.command()
def serve(
    sessions: Annotated[Path | None, typer.Option(help="Folder of session folders (each holding session.sqlite).")] = None,
    db: Annotated[str | None, typer.Option(help="URL of a shared session store that sessions write to.")] = None,
    images: Annotated[Path | None, typer.Option(help="With --db: folder the store's image paths are relative to.")] = None,
    accounts: Annotated[str, typer.Option(help="Accounts database: a SQLite file or a URL.")] = "gridscout-accounts.sqlite",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    secure_cookies: Annotated[bool, typer.Option(help="Send the login cookie over HTTPS only (behind TLS).")] = False,
) -> None:
    """Serve the web interface: watch, steer and review sessions (docs/web.md)."""
    try:
        from .web.app import WebSettings
        from .web.server import accounts_url
        from .web.server import serve as run_server
    except ImportError as err:
        raise GridScoutError(f"the web interface needs its extra ({err.name} is missing): "
                             "pip install -e '.[web]'") from None

    if db and images is None:
        typer.echo("warning: no --images folder: pages will show no images of the --db store", err=True)
    run_server(WebSettings(accounts_url=accounts_url(accounts), db=db, images=images, sessions=sessions,
                           secure_cookies=secure_cookies), host=host, port=port)


user_app = typer.Typer(help="Web accounts: users, their groups and roles, and the sessions each group sees.",
                       no_args_is_help=True)
app.add_typer(user_app, name="user")
ACCOUNTS_OPTION = typer.Option(help="Accounts database: a SQLite file or a URL (as for serve).")


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="Login name.")],
    group: Annotated[list[str], typer.Option(help="Group (created when new); repeat for several.")],
    role: Annotated[str, typer.Option(help="viewer, operator or admin.")] = "viewer",
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input, not a prompt.")] = False,
    accounts: Annotated[str, ACCOUNTS_OPTION] = "gridscout-accounts.sqlite",
) -> None:
    """Create a web user (the password is stored argon2-hashed)."""
    from .web.accounts import Accounts
    from .web.server import accounts_url

    password = (sys.stdin.readline().rstrip("\n") if password_stdin
                else typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    Accounts(accounts_url(accounts)).add_user(name, password, role=role, groups=group)
    typer.echo(f"user {name} ({role}) added to {', '.join(group)}")


@user_app.command("assign")
def user_assign(
    session_id: Annotated[str, typer.Argument(help="Session id (as gridscout run prints it).")],
    group: Annotated[str, typer.Option(help="Group that may see the session (created when new).")],
    accounts: Annotated[str, ACCOUNTS_OPTION] = "gridscout-accounts.sqlite",
) -> None:
    """Let a group see a session (its operators may also steer it)."""
    from .web.accounts import Accounts
    from .web.server import accounts_url

    Accounts(accounts_url(accounts)).assign_session(session_id, group)
    typer.echo(f"session {session_id} visible to group {group}")


export_app = typer.Typer(help="Export a recorded session for SerialEM, RELION or training.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("nav")
def export_nav(
    session: Annotated[Path, typer.Argument(help="Session directory (holding session.sqlite, unless --db).")],
    out: Annotated[Path | None, typer.Option(help="Navigator file to write (default SESSION/targets.nav).")] = None,
    db: Annotated[str | None, typer.Option(help="Database URL, when the store is not the directory's SQLite.")] = None,
    session_id: Annotated[str | None, typer.Option(help="Session in the store (default: the latest).")] = None,
) -> None:
    """Write the selected squares and holes as SerialEM Navigator points on their maps."""
    from .session.export import export_nav as write

    done = write(_open_store(session, db, must_exist=True), session, out or session / "targets.nav", session_id=session_id)
    typer.echo(f"{done.points} points on {done.maps} maps written to {done.path}")


@export_app.command("star")
def export_star(
    session: Annotated[Path, typer.Argument(help="Session directory (holding session.sqlite, unless --db).")],
    out: Annotated[Path | None, typer.Option(help="STAR file to write (default SESSION/micrographs.star).")] = None,
    good_only: Annotated[bool, typer.Option("--good-only", help="Only exposures assessed good.")] = False,
    movies: Annotated[bool, typer.Option("--movies", help="List the frame stacks (rlnMicrographMovieName).")] = False,
    kv: Annotated[float, typer.Option(help="Accelerating voltage, kV.")] = 300.0,
    cs: Annotated[float, typer.Option(help="Spherical aberration, mm.")] = 2.7,
    amplitude_contrast: Annotated[float, typer.Option(help="Amplitude contrast fraction.")] = 0.07,
    db: Annotated[str | None, typer.Option(help="Database URL, when the store is not the directory's SQLite.")] = None,
    session_id: Annotated[str | None, typer.Option(help="Session in the store (default: the latest).")] = None,
) -> None:
    """Write the session's exposures as a RELION micrograph list with optics groups and CTF values."""
    from .session.export import export_star as write

    done = write(_open_store(session, db, must_exist=True), session, out or session / "micrographs.star",
                 session_id=session_id, good_only=good_only, movies=movies, voltage_kv=kv, cs_mm=cs,
                 amplitude_contrast=amplitude_contrast)
    typer.echo(f"{done.micrographs} {'movies' if movies else 'micrographs'} in {done.optics_groups} optics "
               f"group(s) written to {done.path}")


@export_app.command("dataset")
def export_dataset(
    session: Annotated[Path, typer.Argument(help="Session directory (holding session.sqlite, unless --db).")],
    out: Annotated[Path, typer.Argument(help="Dataset directory to write (dataset.json and images/).")],
    link: Annotated[bool, typer.Option("--link", help="Link the images instead of copying them.")] = False,
    db: Annotated[str | None, typer.Option(help="Database URL, when the store is not the directory's SQLite.")] = None,
    session_id: Annotated[str | None, typer.Option(help="Session in the store (default: the latest).")] = None,
) -> None:
    """Write the session as a GridScout dataset: every image, its place, and its labels (docs/dataset.md)."""
    from .session.export import export_dataset as write

    path = write(_open_store(session, db, must_exist=True), session, out, session_id=session_id, link=link)
    typer.echo(f"dataset written to {path}")


@app.command("rank-epu")
def rank_epu(
    directory: Annotated[Path, typer.Argument(help="EPU session directory (holding EpuSession.dm).")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the ranking as JSON.")] = False,
) -> None:
    """Rank the squares and holes of an EPU session with GridScout's rankers, where EPU kept the images."""
    import json

    from .session.epu import rank_epu as rank

    ranking = rank(directory)
    if json_out:
        typer.echo(json.dumps(ranking.record()))
        return
    typer.echo(f"EPU session {ranking.session.name}: {len(ranking.squares)} squares")
    for note in ranking.notes:
        typer.echo(f"note: {note}")
    for square in ranking.squares:
        score = "unscored" if square.score is None else f"score {square.score:.3f}"
        scored = sum(h.score is not None for h in square.holes)
        typer.echo(f"  square {square.id}  {score}{'  selected' if square.selected else ''}  "
                   f"holes {scored}/{len(square.holes)} scored" + "".join(f"; {n}" for n in square.notes))


@app.command()
def version() -> None:
    """Print the GridScout version."""
    typer.echo(f"gridscout {__version__}")


def main() -> None:
    """Entry point: run the app; GridScout errors become one line and exit status 2."""
    try:
        result = app(standalone_mode=False)  # returns the exit code instead of raising it
    except GridScoutError as err:
        typer.echo(f"gridscout: error: {err}", err=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("gridscout: aborted", err=True)
        sys.exit(130)
    except typer.TyperException as err:  # usage errors arrive here in non-standalone mode
        err.show()
        sys.exit(err.exit_code)
    sys.exit(result if isinstance(result, int) else 0)
