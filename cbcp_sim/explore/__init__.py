"""The model shown without a trial: GMFM-66 centiles by age, trajectories by arm, and the trial calendar."""
