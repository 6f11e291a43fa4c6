"""Pure decisions about identity and access: no I/O except through what callers pass in."""
