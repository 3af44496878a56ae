"""Supply schemes for many customers: STRtree spatial index vs a vectorised scan, same run.

Transformers are spread uniformly at a constant density (about 5 per km², a dense district);
each customer sits within 600 m of a random transformer. Both strategies answer every customer
and the answers are compared, so the speed-up is for identical results.

    .venv/bin/python benches/bench_scheme.py                 # 3 sizes up to 10k × 50k
    .venv/bin/python benches/bench_scheme.py --sizes 200:1000 --seed 3
"""

from __future__ import annotations

import argparse
import math
import random
import time

from field_api.schemes.rules import (
    Network,
    SchemeAnswer,
    SchemeRequest,
    SupplyTransformer,
    design_scheme,
    settings_from,
)
from standard_kits import load_catalogue

DENSITY_PER_KM2 = 5.0
ORIGIN = (120.15, 30.28)
M_PER_DEG_LAT = 111_320.0


def make_network(n: int, rng: random.Random) -> list[SupplyTransformer]:
    """``n`` transformers uniformly over a square sized for the density."""
    side_m = math.sqrt(n / DENSITY_PER_KM2) * 1000
    m_per_deg_lon = M_PER_DEG_LAT * math.cos(math.radians(ORIGIN[1]))
    out = []
    for i in range(n):
        x, y = rng.uniform(0, side_m), rng.uniform(0, side_m)
        rated = rng.choice([100, 200, 315, 400, 630])
        out.append(SupplyTransformer(
            id=f"T{i}", rated_kva=rated, load_kva=rng.uniform(0.3, 1.0) * rated,
            lon=ORIGIN[0] + x / m_per_deg_lon, lat=ORIGIN[1] + y / M_PER_DEG_LAT,
        ))
    return out


def make_requests(
    n: int, transformers: list[SupplyTransformer], rng: random.Random
) -> list[SchemeRequest]:
    """``n`` requests near random transformers: homes single-phase, businesses three-phase."""
    m_per_deg_lon = M_PER_DEG_LAT * math.cos(math.radians(ORIGIN[1]))
    out = []
    for _ in range(n):
        t = rng.choice(transformers)
        r, a = rng.uniform(0, 600), rng.uniform(0, 2 * math.pi)
        home = rng.random() < 0.7
        out.append(SchemeRequest(
            category="residential" if home else "business",
            phases=1 if home else 3,
            capacity_kw=rng.uniform(3, 11) if home else rng.uniform(10, 160),
            lon=t.lon + r * math.cos(a) / m_per_deg_lon,
            lat=t.lat + r * math.sin(a) / M_PER_DEG_LAT,
        ))
    return out


def run(network: Network, requests: list[SchemeRequest]) -> tuple[float, list[SchemeAnswer]]:
    """Seconds to answer every request, and the answers."""
    catalogue = load_catalogue()
    settings = settings_from(catalogue)
    start = time.perf_counter()
    answers = [design_scheme(r, network, catalogue, settings=settings) for r in requests]
    return time.perf_counter() - start, answers


def main() -> None:
    """Run the sizes and print both strategies side by side."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="1000:5000,5000:25000,10000:50000",
        help="comma-separated CUSTOMERS:TRANSFORMERS pairs",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    load_catalogue()  # read the YAML once, outside the timings
    header = (
        f"{'customers':>9} {'transformers':>12} | {'index build s':>13} {'index s':>8} "
        f"{'ms/scheme':>9} | {'scan build s':>12} {'scan s':>8} {'ms/scheme':>9} | "
        f"{'speed-up':>8} {'accepted':>8} same"
    )
    print(header)
    print("-" * len(header))
    for pair in args.sizes.split(","):
        n_customers, n_transformers = (int(v) for v in pair.split(":"))
        rng = random.Random(args.seed)
        transformers = make_network(n_transformers, rng)
        requests = make_requests(n_customers, transformers, rng)
        t0 = time.perf_counter()
        indexed = Network(transformers, spatial_index=True)
        t1 = time.perf_counter()
        scanned = Network(transformers, spatial_index=False)
        t2 = time.perf_counter()
        index_s, index_answers = run(indexed, requests)
        scan_s, scan_answers = run(scanned, requests)
        same = index_answers == scan_answers
        accepted = sum(a.accepted for a in index_answers)
        print(
            f"{n_customers:>9} {n_transformers:>12} | {t1 - t0:>13.3f} {index_s:>8.2f} "
            f"{1000 * index_s / n_customers:>9.3f} | {t2 - t1:>12.3f} {scan_s:>8.2f} "
            f"{1000 * scan_s / n_customers:>9.3f} | {scan_s / index_s:>7.1f}x "
            f"{accepted:>8} {'yes' if same else 'NO'}"
        )


if __name__ == "__main__":
    main()
