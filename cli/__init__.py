"""The `haven` command line: one module per command group, each talking to the node over the bus."""
