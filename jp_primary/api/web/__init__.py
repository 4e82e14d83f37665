"""The web view under ``/ui/``: server-rendered pages of a job's provenance for people.

Templates and the stylesheet ship inside the package (nothing is fetched from elsewhere, and the
pages work with JavaScript off). The pages call the same services as the REST routes, with the
same route policies and the same authentication: a pasted service or issuer token is kept in an
HttpOnly, SameSite=Strict cookie (Secure over TLS) that counts as a bearer token under ``/ui/``
only, and a client certificate on the TLS listener works as it does for the API. Every form
carries a CSRF token (docs/web.md).
"""
