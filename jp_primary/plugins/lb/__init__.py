"""The L&B dump plugin: gLite L&B event dumps replayed into JP attributes.

Pure cores: ``ulm`` (line format), ``seqcode`` (ordering), ``events`` (typed events),
``statemachine``/``transitions``/``steps`` (the replay), ``history``/``derive``/``consistency``
(derived values), ``record`` (JobRecord XML). ``plugin.LBPlugin`` does the file I/O.
"""
