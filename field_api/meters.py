"""The one meter-code rule: State Grid meter asset codes (Q/GDW 1205-2013, docs/domain.md).

A meter identification code is 22 digits: 5-digit unit code + 2-digit asset type + 14-digit
serial + 1 check digit. The check-digit rule is not confirmed, so validators live in a
registry and none is applied unless configured by name (``FIELDOPS_MEDIA_METER_CHECK_DIGIT_RULE``).

Every place that takes a meter code uses :func:`meter_code` (or :func:`parse_meter_code`):
the storekeeper issuing a kit, the crew uploading the barcode photo, and the crew app, whose
input pattern is :data:`METER_CODE_INPUT_PATTERN` (``field_api/web/static/js/crew.js`` holds the
same text; a test keeps the two equal). Pure: no database, no web, no image libraries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from field_api.errors import ValidationFailed

if TYPE_CHECKING:
    from field_api.config import Settings

METER_CODE_LENGTH = 22
METER_CODE_INPUT_PATTERN = "[0-9]{22}"
"""The HTML ``pattern`` of a typed meter code (after spaces and hyphens are dropped)."""


CheckDigitValidator = Callable[[str], bool]
"""Takes all 22 digits, returns True when the last digit is the right check digit."""


def _luhn_ok(code: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(code)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _gs1_mod10_ok(code: str) -> bool:
    body, check = code[:-1], int(code[-1])
    total = sum(int(ch) * (3 if i % 2 == 0 else 1) for i, ch in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


class CheckDigitRegistry:
    """Named check-digit rules; settings pick one by name (or none: the default)."""

    def __init__(self) -> None:
        self._validators: dict[str, CheckDigitValidator] = {}

    def register(self, name: str, validator: CheckDigitValidator) -> None:
        """Add or replace the rule called ``name``."""
        self._validators[name] = validator

    def get(self, name: str) -> CheckDigitValidator:
        """The rule called ``name``; an unknown name is a configuration error."""
        try:
            return self._validators[name]
        except KeyError:
            known = ", ".join(sorted(self._validators)) or "none"
            raise KeyError(f"unknown check-digit rule {name!r} (known: {known})") from None

    def names(self) -> list[str]:
        """Registered rule names, sorted."""
        return sorted(self._validators)


check_digit_rules = CheckDigitRegistry()
# Candidate rules only: which one (if any) Q/GDW 1205 uses is unconfirmed, so none is default.
check_digit_rules.register("luhn", _luhn_ok)
check_digit_rules.register("gs1_mod10", _gs1_mod10_ok)


@dataclass(frozen=True)
class MeterAssetCode:
    """A parsed 22-digit State Grid meter identification code."""

    unit_code: str
    asset_type: str
    serial: str
    check_digit: str

    @property
    def value(self) -> str:
        """The 22 digits as printed."""
        return self.unit_code + self.asset_type + self.serial + self.check_digit


def normalize_meter_code(text: str) -> str:
    """Drop spaces and hyphens a terminal or a label may add between digit groups."""
    return "".join(ch for ch in text.strip() if ch not in " -\t")


def parse_meter_code(
    text: str,
    *,
    check_digit_rule: str | None = None,
    registry: CheckDigitRegistry = check_digit_rules,
) -> MeterAssetCode:
    """Parse and validate a State Grid meter asset code.

    Args:
        text: the scanned or decoded value.
        check_digit_rule: a registry name to verify the check digit with; None skips it.
        registry: where rules are looked up (tests or deployments may add their own).

    Returns:
        The fields of the code.

    Raises:
        ValidationFailed: wrong length, non-digits, or a failed check digit.

    Example:
        >>> parse_meter_code("3240101234567890123456").serial
        '01234567890123'
    """
    code = normalize_meter_code(text)
    if len(code) != METER_CODE_LENGTH:
        raise ValidationFailed(
            f"a meter asset code has {METER_CODE_LENGTH} digits, got {len(code)} characters",
            code="meter.code_length",
            params={"length": METER_CODE_LENGTH, "got": len(code)},
        )
    if not (code.isascii() and code.isdigit()):
        raise ValidationFailed(
            "a meter asset code contains digits only",
            code="meter.code_not_digits",
        )
    if check_digit_rule is not None and not registry.get(check_digit_rule)(code):
        raise ValidationFailed(
            f"meter asset code fails the {check_digit_rule} check digit",
            code="meter.check_digit",
            params={"rule": str(check_digit_rule)},
        )
    return MeterAssetCode(
        unit_code=code[0:5], asset_type=code[5:7], serial=code[7:21], check_digit=code[21]
    )


def meter_code(text: str, *, check_digit_rule: str | None = None) -> str:
    """The normalised 22-digit code of ``text``; ValidationFailed (422) when it is not one."""
    return parse_meter_code(text, check_digit_rule=check_digit_rule).value


def configured_check_digit_rule(settings: Settings) -> str | None:
    """The check-digit rule this service applies (None: off, the default)."""
    return settings.media.meter_check_digit_rule
