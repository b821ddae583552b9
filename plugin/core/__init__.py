"""Pure reconciliation core: plain data in, plain data out (no Flask, no HTTP)."""
