"""Cash reconciliation of pension payouts per courier and day."""
