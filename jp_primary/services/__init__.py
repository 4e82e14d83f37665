"""Use cases. They decide what a request means (and own their transactions), never HTTP."""
