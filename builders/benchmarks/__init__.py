"""Benchmark test sets for decontamination: one declarative file per benchmark (see openmathmix.hygiene.benchmarks)."""
