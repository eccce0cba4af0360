from perparb.instruments.canonical import canonical_symbol, split_multiple
from perparb.instruments.registry import Registry
from perparb.instruments.snapshot import load_registry

__all__ = ["Registry", "canonical_symbol", "load_registry", "split_multiple"]
