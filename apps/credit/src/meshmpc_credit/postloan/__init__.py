"""Post-loan: early-warning data sets, watch list, collection list, roll rates, vintages."""
