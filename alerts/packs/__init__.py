"""Shipped alert rule packs (YAML), enabled with `alerts.packs: [procure_to_pay, ...]`; see docs/alerts.md."""
