"""Synthetic traffic for contracts: the generator behind `slamon generate`, the demo and the benches."""
