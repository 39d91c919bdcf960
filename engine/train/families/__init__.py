"""Model families, one package each: a `FAMILY` declaration and the class that trains it."""
