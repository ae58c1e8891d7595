"""Lowerings of the reshape op family (see base.py for the contract)."""

from __future__ import annotations

from tinymeter.firmware.lower.base import Lowering

LOWERINGS: dict[str, Lowering] = {}
