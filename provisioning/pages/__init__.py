"""Server-side rendered admin pages: small functions returning escaped HTML strings."""
