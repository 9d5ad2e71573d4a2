"""Self-contained bilingual HTML reports of the loan life cycle (matplotlib PNGs inlined)."""
