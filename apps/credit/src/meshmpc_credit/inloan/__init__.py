"""In-loan monitoring: receiver-only monthly feeds, joint behaviour score, alerts, drift."""
