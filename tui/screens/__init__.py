"""One module per wizard screen."""
