"""The HTCondor user-log plugin (``condor-log``): ``plugin.CondorLogPlugin`` reads the log with
``htcondor2``; ``summary`` (pure) adds one job's events up to attribute values.
"""
