"""Many runs of a scenario at once: sweeps over a grid, the sample size for a target power, assurance over priors
and sensitivity over ranges, all with common random numbers and a resumable store."""
