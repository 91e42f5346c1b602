"""Data sets: the data store (root, download, checksum) and one loader per data set."""
