"""Personal financial information where people read: classification levels and identifier masking.

Classification follows the PBoC's financial data rules: JR/T 0197-2020 grades
financial data in five security levels (5 most sensitive) and JR/T 0171-2020
sorts personal financial information into C3 (authentication data: passwords,
keys), C2 (data that identifies a person or reveals their finances: ID and
account numbers, phone numbers, credit records) and C1 (internal, e.g. account
opening time). A schema column may declare ``classification = "C2"`` (or a
level ``"L3"``); :func:`needs_masking` tells what may never appear in clear in a
log, report, console page or error message.

Masking keeps enough to recognise a record and no more, the way banks print
them: credit code ``91110108****1234`` (first 8, last 4), phone
``138****5678``, ID card ``110101********1234``, a name ``张*``. The full value
stays only in the owner's own result files. :class:`MaskingFilter` applies the
same masks to every log record of the ``meshmpc`` loggers, and
:func:`mask_text` to any message that may quote data (errors, HTML reports).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

CATEGORIES = ("C1", "C2", "C3")
LEVELS = ("L1", "L2", "L3", "L4", "L5")
MASKED = frozenset({"C2", "C3", "L3", "L4", "L5"})
"""Classifications whose values are masked wherever a person reads them."""

# The ID card pattern runs first: an 18-digit ID number also fits the credit code's shape.
_USCC = re.compile(r"(?<![0-9A-Z])([0-9A-HJ-NPQRTUWXY]{2}\d{6})[0-9A-HJ-NPQRTUWXY]{6}"
                   r"([0-9A-HJ-NPQRTUWXY]{4})(?![0-9A-Z])")
_ID_CARD = re.compile(r"(?<![0-9A-Z])(\d{6})(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
                      r"(\d{3}[\dXx])(?![0-9A-Z])")
_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")


def check_classification(value: str, column: str = "?") -> str:
    """Validate a schema's classification value (C1-C3 or L1-L5)."""
    if value not in CATEGORIES + LEVELS:
        raise ValueError(f"column {column!r}: classification {value!r} is not one of "
                         f"{', '.join(CATEGORIES + LEVELS)} (JR/T 0171 categories, "
                         "JR/T 0197 levels)")
    return value


def needs_masking(classification: str | None) -> bool:
    return classification in MASKED


_PHONE_WORDS = ("phone", "mobile", "tel")
_NAME_WORDS = ("name", "contact", "legal_rep", "person")


def mask_kind_for(column: str, fmt: str | None = None) -> str:
    """The mask a column's values get, from its format or name (``auto``: by each value's shape)."""
    lowered = column.lower()
    if fmt == "uscc" or "credit_code" in lowered:
        return "credit_code"
    if any(word in lowered for word in _PHONE_WORDS):
        return "phone"
    if any(word in lowered for word in _NAME_WORDS):
        return "name"
    return "auto"


def mask_credit_code(code: str) -> str:
    """``911101081234561234`` -> ``91110108****1234``."""
    code = code.strip()
    return f"{code[:8]}****{code[-4:]}" if len(code) >= 12 else "****"


def mask_phone(phone: str) -> str:
    """``13812345678`` -> ``138****5678``."""
    digits = phone.strip()
    return f"{digits[:3]}****{digits[-4:]}" if len(digits) >= 7 else "****"


def mask_name(name: str) -> str:
    """``张三丰`` -> ``张**``; a one-character name becomes ``*``."""
    name = name.strip()
    return name[:1] + "*" * (len(name) - 1) if len(name) > 1 else "*"


def mask_value(value: Any, kind: str = "auto") -> str:
    """Mask one identifier; ``kind`` is credit_code, phone, name or auto (by its shape)."""
    text = str(value)
    if kind == "credit_code":
        return mask_credit_code(text)
    if kind == "phone":
        return mask_phone(text)
    if kind == "name":
        return mask_name(text)
    masked = mask_text(text)
    return masked if masked != text else (mask_name(text) if text else text)


def mask_text(text: str) -> str:
    """Mask every credit code, ID card number and mobile number found in free text."""
    text = _ID_CARD.sub(lambda m: f"{m.group(1)}********{m.group(2)}", text)
    text = _USCC.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)
    return _PHONE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)


class MaskingFilter(logging.Filter):
    """A logging filter that masks identifiers in a record's message before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def install_log_masking(logger_name: str = "meshmpc") -> MaskingFilter:
    """Mask identifiers in every log record from now on (idempotent).

    The filter goes on ``logger_name`` and on the root logger's handlers, and
    a record factory masks each record as it is made, so loggers configured
    later (uvicorn's, a library's own handlers) are covered too. Every CLI
    entry point calls this before it runs a command.
    """
    logger = logging.getLogger(logger_name)
    masking = next((f for f in logger.filters if isinstance(f, MaskingFilter)), None)
    if masking is None:
        masking = MaskingFilter()
        logger.addFilter(masking)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(masking)
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "meshmpc_masking", False):
        logging.setLogRecordFactory(_masking_factory(factory))
    return masking


def _masking_factory(inner: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = inner(*args, **kwargs)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string: leave it to logging to report
            return record
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return record

    make.meshmpc_masking = True  # type: ignore[attr-defined]
    return make
