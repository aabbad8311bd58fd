"""One module per page: its layout and its callbacks; data from dashboards.data, never SQL here."""
