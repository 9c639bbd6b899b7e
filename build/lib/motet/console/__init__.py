"""The operator's console of a served runtime: the console's static files, its JSON API
under `/_motet/...`, `/metrics`, and their access rules; and the parts `motet start` serves
(`serving`: telemetry, then the gateway with the console in front). Above `gateway/` and
`observe/`, whose body reader, problem responses and telemetry it reuses."""

from .._public import publish as _publish
from ._part import GatewayPart as GatewayPart
from ._part import serving as serving

__all__ = ["GatewayPart", "serving"]

_publish(__name__, globals())
