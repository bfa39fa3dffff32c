"""Phone numbers, parsed and normalised to E.164 by ``phonenumbers``."""

from __future__ import annotations

import phonenumbers


def normalise_phone(raw: str, default_region: str) -> str | None:
    """E.164 for a valid number (``+14155550123``), None for anything else."""
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
