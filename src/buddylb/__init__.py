"""buddylb: a software server load balancer whose headline feature is connection
persistence across server farms ("buddy sticky", SPEC §1)."""

__version__ = "0.1.0"
