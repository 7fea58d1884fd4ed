"""The e2e fixtures (free ports, backends, `buddylb run` processes) for service tests."""
from tests.e2e.conftest import backends, balancer, ports  # noqa: F401
