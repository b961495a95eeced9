"""Abstract test suites, one per contract; a backend's test file subclasses them."""
