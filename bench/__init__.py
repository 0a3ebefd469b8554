"""Benchmarks: each figure measured through callrec side by side with its direct-path twin (`make bench`)."""
