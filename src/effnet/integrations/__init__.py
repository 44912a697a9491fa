"""Optional bridges to other libraries (imported only on request; effnet does not need them)."""
