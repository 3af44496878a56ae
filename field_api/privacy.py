"""Masking of personal data (customer names, phone and ID numbers) for logs, lists and exports."""

from __future__ import annotations


def mask_name(name: str | None) -> str:
    """Keep the family name (first character), mask the rest: 张三丰 → 张**."""
    if not name:
        return ""
    return name[0] + "*" * max(len(name) - 1, 1)


def mask_phone(phone: str | None) -> str:
    """Keep the first three and last four digits: 13812345678 → 138****5678."""
    if not phone:
        return ""
    if len(phone) <= 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def mask_id_number(id_number: str | None) -> str:
    """Keep the first and last two characters of an ID number."""
    if not id_number:
        return ""
    if len(id_number) <= 4:
        return "*" * len(id_number)
    return id_number[:2] + "*" * (len(id_number) - 4) + id_number[-2:]
