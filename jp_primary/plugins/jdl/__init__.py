"""The JDL plugin (``jdl``, alias ``classad``): ``plugin.JDLPlugin`` turns a job's ClassAd into
values, parsed by the shared ``jp_primary.plugins.classads``.
"""
