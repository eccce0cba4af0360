"""Research over venue history: funding-rate carry across venues."""
