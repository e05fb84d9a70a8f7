"""File formats of the filesystem connector: readers, writers and the text they share."""
