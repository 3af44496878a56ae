"""Pure rules of stock quantities: exact units, kit lines, what comes back after the work."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

MILLI = 1000


def to_milli(quantity: float) -> int:
    """A quantity in the material's unit as integer thousandths (exact sums and comparisons)."""
    if not math.isfinite(quantity):
        raise ValueError("quantity must be a finite number")
    return round(quantity * MILLI)


def from_milli(milli: int) -> float:
    """Thousandths back to the material's unit."""
    return milli / MILLI


def kit_lines(bom: Iterable[Mapping[str, object]]) -> dict[str, int]:
    """Bill-of-materials lines summed per material code (a code may appear in two roles)."""
    lines: dict[str, int] = {}
    for line in bom:
        code = str(line["material_code"])
        quantity = line["quantity"]
        if not isinstance(quantity, int | float) or quantity <= 0:
            raise ValueError(f"{code}: quantity must be positive")
        lines[code] = lines.get(code, 0) + to_milli(float(quantity))
    return lines


def returns(issued: Mapping[str, int], consumed: Mapping[str, float]) -> dict[str, int]:
    """What goes back to the depot per material: issued minus consumed (thousandths).

    Every issued material needs its consumed quantity (0 when unused), none may exceed what was
    issued, and unknown materials are refused; all problems are raised together.
    """
    problems: list[str] = []
    out: dict[str, int] = {}
    for code in sorted(set(consumed) - set(issued)):
        problems.append(f"{code}: not part of this kit")
    for code, issued_milli in sorted(issued.items()):
        if code not in consumed:
            problems.append(f"{code}: consumed quantity missing")
            continue
        used = consumed[code]
        if not math.isfinite(used) or used < 0:
            problems.append(f"{code}: consumed quantity must be ≥ 0")
            continue
        used_milli = to_milli(used)
        if used_milli > issued_milli:
            problems.append(
                f"{code}: consumed {used:g} exceeds the {from_milli(issued_milli):g} issued"
            )
            continue
        out[code] = issued_milli - used_milli
    if problems:
        raise ValueError("; ".join(problems))
    return out
