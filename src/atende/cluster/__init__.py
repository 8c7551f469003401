"""Several atende nodes on one database: which are alive, and taking over a dead one's
calls."""
