"""Paper trading: the market as trading sees it, accounting, and the assembly of the pipeline."""
