"""The synthetic demo lot: a CAR-T phenotype panel simulated with known truth."""
