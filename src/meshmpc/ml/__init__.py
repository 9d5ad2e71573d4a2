"""Vertical learning: owner-matrix products, binning/WOE, LR, boosting, scorecards."""
