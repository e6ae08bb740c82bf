"""The `ragarbiter` command line (a leaf: it may import anything, nothing imports it)."""
