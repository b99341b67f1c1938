"""The `gridscout` command. Thin: parse, call the packages, turn errors into one line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from . import __version__
from .model.errors import GridScoutError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="GridScout: automated cryo-EM grid screening and data collection.",
)

DEFAULT_REAL_DATA = Path("../shared/data/real")


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Seed of the simulated grid and microscope.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Also write the images here as MRC.")] = None,
) -> None:
    """Screen one simulated grid: load, atlas, three squares, on the virtual clock."""
    from .session.demo import run_demo

    run_demo(seed=seed, out=out, say=typer.echo)


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
