"""Issue 8: the web interface's response times, page renders, live latency and API load.

    python benchmarks/web.py [--repeats 5] [--clients 50] [--seconds 10] [--rate 2] [--events 1]

Builds a session store with a 500-square atlas and a 2,000-hole square (real PNG
thumbnails and MRC files, rows as the engine writes them), starts ``gridscout serve`` on
127.0.0.1 in its own process, and prints, each as the median of `--repeats` runs:

1. the grid page (500 squares) and the square page (2,000 holes): server time of every
   request the page makes (HTML, then its JSON), and Chromium's time from navigation
   until the overlay is drawn (headless, Debian's /usr/bin/chromium via Playwright);
2. how long an event appended to the store takes to appear in an open session page;
3. API latency (p50, p95, p99) with `--clients` concurrent logged-in clients, each
   sending `--rate` requests per second (a bounded load) for `--seconds`, while the
   session gets `--events` new events a second (each makes the server rebuild the
   answers it had cached for the session).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from gridscout.session.layout import save_image
from gridscout.session.store import GridRow, HoleRow, ImageRow, SessionRow, SquareRow, Store
from gridscout.web.accounts import Accounts

PASSWORD = "benchmark password"
CHROMIUM = "/usr/bin/chromium"


def build_session(folder: Path) -> dict[str, str]:
    """A session with one grid: 500 squares on its atlas, 2,000 holes in one square image."""
    rng = np.random.default_rng(8)
    store = Store.in_directory(folder)
    atlas_path, atlas_png = save_image(folder / "grid01" / "atlas.mrc", rng.normal(size=(2048, 2048)).astype(np.float32),
                                       8000.0)
    square_path, square_png = save_image(folder / "grid01" / "squares" / "sq0000.mrc",
                                         rng.normal(size=(2048, 2048)).astype(np.float32), 400.0)
    with store.transaction() as tx:
        session = SessionRow(name="benchmark", protocol={}, state="running")
        tx.add(session)
        tx.flush()
        grid = GridRow(session_id=session.id, slot=1, name="grid01", state="screening")
        tx.add(grid)
        tx.flush()
        atlas = _image(session.id, grid.id, None, "atlas", atlas_path, atlas_png, folder, 8000.0)
        tx.add(atlas)
        tx.flush()
        square_image = _image(session.id, grid.id, atlas.id, "square", square_path, square_png, folder, 400.0)
        tx.add(square_image)
        tx.flush()
        states = ["found"] * 8 + ["selected", "visited"]
        squares = [SquareRow(grid_id=grid.id, image_id=atlas.id, label=f"sq{i:04d}",
                             centre_px=[40.0 + 88 * (i % 22), 40.0 + 88 * (i // 22)], stage_x_um=0.0, stage_y_um=0.0,
                             score=float(rng.uniform()), state=states[i % 10]) for i in range(500)]
        squares[0].square_image_id = square_image.id
        tx.add_all(squares)
        tx.flush()
        tx.add_all([HoleRow(square_id=squares[0].id, image_id=square_image.id, label=f"h{i:04d}",
                            centre_px=[20.0 + 45 * (i % 45), 20.0 + 45 * (i // 45)], stage_x_um=0.0, stage_y_um=0.0,
                            radius_um=0.6, score=float(rng.uniform()), state="selected" if i < 8 else "found")
                    for i in range(2000)])
        for i in range(200):
            store.append_event(tx, session.id, "holes_found", {"square": f"sq{i:04d}", "found": 10}, scope_time_s=i)
        ids = {"session": session.id, "grid": grid.id, "square": squares[0].id}
    store.close()
    return ids


def _image(session_id: str, grid_id: str, parent: str | None, level: str, path: Path, png: Path, folder: Path,
           pixel_size: float) -> ImageRow:
    return ImageRow(session_id=session_id, grid_id=grid_id, parent_id=parent, level=level, preset=level,
                    path=str(path.relative_to(folder)), thumbnail=str(png.relative_to(folder)),
                    pixel_size_angstrom=pixel_size, stage_x_um=0.0, stage_y_um=0.0,
                    pixel_to_stage=[[pixel_size * 1e-4, 0.0], [0.0, pixel_size * 1e-4]], scope_time_s=0.0)


def start_server(sessions: Path, accounts: Path, port: int) -> subprocess.Popen:
    """`gridscout serve` in its own process, as an operator runs it."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    process = subprocess.Popen([sys.executable, "-c", "from gridscout.cli import main; main()", "serve",
                                "--sessions", str(sessions), "--accounts", str(accounts), "--port", str(port)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not start")


def login(base: str) -> tuple[dict[str, str], str]:
    """Log in through the form; returns the cookies and the CSRF token."""
    with httpx.Client(base_url=base) as client:
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
        client.post("/login", data={"name": "bench", "password": PASSWORD, "csrf": csrf})
        return dict(client.cookies), client.get("/api/me").json()["csrf_token"]


def touch(ids: dict[str, str], store: Store | None = None) -> None:
    """Append an event, as a running session does: the server's cached answers are then out of date."""
    own = store is None
    store = store or Store(f"sqlite:///{Path(ids['folder']) / 'session.sqlite'}")
    with store.transaction() as tx:
        store.append_event(tx, ids["session"], "benchmark_ping", {})
    if own:
        store.close()


def server_times(base: str, cookies: dict[str, str], requests: list[str], repeats: int,
                 ids: dict[str, str] | None = None) -> float:
    """Median over `repeats` of the summed response times of the page's requests, seconds; with `ids`,
    a new event before each repeat makes the server build every answer afresh."""
    totals = []
    with httpx.Client(base_url=base, cookies=cookies) as client:
        for url in requests:  # first-request costs (imports, SQL compilation) are not what is measured
            client.get(url).raise_for_status()
        for _ in range(repeats):
            if ids:
                touch(ids)
            started = time.perf_counter()
            for url in requests:
                client.get(url).raise_for_status()
            totals.append(time.perf_counter() - started)
    return statistics.median(totals)


def browser_times(base: str, cookies: dict[str, str], ids: dict[str, str], repeats: int) -> dict[str, float]:
    """Chromium: navigation to overlay drawn (grid, square); event appended to event shown (session)."""
    from playwright.sync_api import sync_playwright

    out: dict[str, list[float]] = {"grid": [], "square": [], "event": []}
    pages = {"grid": (f"/sessions/{ids['session']}/grids/{ids['grid']}", "#atlas-overlay[data-rendered='500']"),
             "square": (f"/sessions/{ids['session']}/squares/{ids['square']}", "#square-overlay[data-rendered='2000']")}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.add_cookies([{"name": k, "value": v, "url": base} for k, v in cookies.items()])
        page = context.new_page()
        for name, (url, drawn) in pages.items():
            for _ in range(repeats + 1):
                touch(ids)  # the server builds the answers afresh, as after each step of a running session
                started = time.perf_counter()
                page.goto(base + url)
                page.wait_for_selector(drawn, state="attached")
                out[name].append(time.perf_counter() - started)
            out[name] = out[name][1:]  # the first load fills the browser's cache of scripts
        page.goto(f"{base}/sessions/{ids['session']}")
        page.wait_for_selector("#events li")
        store = Store(f"sqlite:///{Path(ids['folder']) / 'session.sqlite'}")
        for i in range(repeats * 2):
            started = time.perf_counter()
            with store.transaction() as tx:
                seq = store.append_event(tx, ids["session"], "benchmark_ping", {"i": i}).seq
            page.wait_for_selector(f"#events li[data-seq='{seq}']", state="attached")
            out["event"].append(time.perf_counter() - started)
            time.sleep(random.uniform(0.05, 0.3))  # land anywhere in the stream's polling interval
        store.close()
        browser.close()
    return {k: statistics.median(v) for k, v in out.items()} | {"event_max": max(out["event"])}


async def load(base: str, cookies: dict[str, str], ids: dict[str, str], clients: int, seconds: float,
               rate: float, events_per_s: float) -> list[float]:
    """Latencies (s) of every request of `clients` clients sending `rate` requests per second each, while
    `events_per_s` events a second are appended to the session, as a running engine does."""
    sid = ids["session"]
    urls = [f"/api/sessions/{sid}", f"/api/sessions/{sid}/grids", f"/api/sessions/{sid}/events?latest=true&limit=50",
            f"/api/sessions/{sid}/exposures?limit=50", "/api/me", f"/api/sessions/{sid}/grids/{ids['grid']}"]
    latencies: list[float] = []
    # made before the clock starts: each client builds an SSL context, ~25 ms of blocking work
    https = [httpx.AsyncClient(base_url=base, cookies=cookies, limits=httpx.Limits(max_connections=1), timeout=30)
             for _ in range(clients)]

    async def client(http: httpx.AsyncClient, seed: int) -> None:
        pick = random.Random(seed)
        await asyncio.sleep(pick.uniform(0, 1 / rate))
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            started = time.perf_counter()
            (await http.get(pick.choice(urls))).raise_for_status()
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(max(0.0, pick.expovariate(rate) - (time.perf_counter() - started)))
        await http.aclose()

    async def engine() -> None:
        store = Store(f"sqlite:///{Path(ids['folder']) / 'session.sqlite'}")
        end = time.perf_counter() + seconds
        while events_per_s and time.perf_counter() < end:
            await asyncio.to_thread(touch, ids, store)
            await asyncio.sleep(1 / events_per_s)
        store.close()

    await asyncio.gather(engine(), *(client(http, i) for i, http in enumerate(https)))
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=2.0, help="requests per second per client")
    parser.add_argument("--events", type=float, default=1.0, help="events per second appended during the load")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "sessions" / "bench"
        ids = build_session(folder) | {"folder": str(folder)}
        accounts = Accounts(f"sqlite:///{Path(tmp) / 'accounts.sqlite'}")
        accounts.add_user("bench", PASSWORD, role="operator", groups=["bench"])
        accounts.assign_session(ids["session"], "bench")
        accounts.close()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = start_server(folder.parent, Path(tmp) / "accounts.sqlite", port)
        base = f"http://127.0.0.1:{port}"
        try:
            report(base, ids, args)
        finally:
            server.terminate()
            server.wait(timeout=10)


def report(base: str, ids: dict[str, str], args: argparse.Namespace) -> None:
    """Measure and print each figure against its target."""
    cookies, _ = login(base)
    sid = ids["session"]
    grid = [f"/sessions/{sid}/grids/{ids['grid']}", f"/api/sessions/{sid}/grids/{ids['grid']}",
            f"/api/sessions/{sid}/images/{_atlas_id(base, cookies, sid, ids['grid'])}",
            f"/api/sessions/{sid}/grids/{ids['grid']}/squares"]
    square = [f"/sessions/{sid}/squares/{ids['square']}", f"/api/sessions/{sid}/squares/{ids['square']}"]
    for name, requests in (("grid page, 500 squares (HTML + 3 JSON requests)", grid),
                           ("square page, 2000 holes (HTML + 1 JSON request)", square)):
        cold = server_times(base, cookies, requests, args.repeats, ids)
        warm = server_times(base, cookies, requests, args.repeats)
        print(f"{name}: server {cold * 1e3:.0f} ms after a new event, {warm * 1e3:.0f} ms cached")
    browser = browser_times(base, cookies, ids, args.repeats)
    print(f"Chromium, navigation to overlay drawn (after a new event): grid {browser['grid'] * 1e3:.0f} ms, "
          f"square {browser['square'] * 1e3:.0f} ms (target <= 1000 ms)")
    print(f"event stored -> shown on the open session page: median {browser['event'] * 1e3:.0f} ms, "
          f"max {browser['event_max'] * 1e3:.0f} ms (target <= 1000 ms)")
    gc.collect()
    gc.freeze()  # the load generator's own garbage collections would count as server latency
    latencies = sorted(asyncio.run(load(base, cookies, ids, args.clients, args.seconds, args.rate, args.events)))
    q = statistics.quantiles(latencies, n=100)
    print(f"API under load, {args.clients} clients x {args.rate:g} req/s for {args.seconds:g} s, {args.events:g} new "
          f"events/s: {len(latencies)} "
          f"requests ({len(latencies) / args.seconds:.0f}/s), p50 {q[49] * 1e3:.1f} ms, p95 {q[94] * 1e3:.1f} ms, "
          f"p99 {q[98] * 1e3:.1f} ms (target p95 <= 50 ms)")


def _atlas_id(base: str, cookies: dict[str, str], sid: str, grid_id: str) -> str:
    return httpx.get(f"{base}/api/sessions/{sid}/grids/{grid_id}", cookies=cookies).json()["atlas_image_id"]


if __name__ == "__main__":
    main()
