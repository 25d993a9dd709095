"""The synthetic demo lots: phenotype, potency and microbial-flow tubes and sterility reads, known truth."""
