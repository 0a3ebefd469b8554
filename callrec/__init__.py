"""callrec: durable call recording."""
