"""Development nodes other than anvil, started by the tests that check tracechain works on any node."""
