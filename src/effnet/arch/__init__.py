"""The paper's architecture: the B0 table, compound-scaling rules, MBConv blocks, model assembly, cost counting."""
