"""How trials are made: children, their natural GMFM-66 growth, the cells' effect, dropout, the calendar and the
allocation to arms, put together by :mod:`cbcp_sim.models.trial`. Each model is a function of the scenario's
section, array shapes and named random streams (:mod:`cbcp_sim.models.streams`); none knows about chunks or
analyses."""
