"""validate: the rules of SPEC §2.3 that need the whole model, after parsing.

Runs every check of `config.checks` over every context and returns all diagnostics in
line order (errors and warnings); it never stops at the first problem, never changes
the model and never raises for a bad configuration.  Line-local rules (syntax, ranges,
repeated single-valued attributes, duplicate names, SEQ numbers, regexes) belong to the
parser; `validate` assumes only that the model came from `parse_text`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Collection

from buddylb.config.checks import Findings
from buddylb.config.checks.ace import (
    check_access_groups,
    check_replicate,
    check_ssl_parameter_maps,
    check_static_cookies,
)
from buddylb.config.checks.buddy import check_buddy_real_groups, check_buddy_sticky_groups
from buddylb.config.checks.references import (
    check_farms,
    check_lb_policies,
    check_mm_policies,
    check_rservers,
    check_service_policies,
    check_stickies,
)
from buddylb.config.checks.tls import check_ssl_proxies
from buddylb.config.checks.vips import check_udp_vips, check_vip_claims, check_virtual_addresses
from buddylb.config.model import Config, Diagnostic

_PER_CONTEXT = (
    check_rservers,
    check_farms,
    check_stickies,
    check_virtual_addresses,
    check_lb_policies,
    check_mm_policies,
    check_service_policies,
    check_buddy_sticky_groups,
    check_buddy_real_groups,
    check_access_groups,
    check_udp_vips,
    check_ssl_parameter_maps,
    check_static_cookies,
)


def validate(config: Config, base_dir: Path, incomplete: Collection[int] = ()) -> list[Diagnostic]:
    """Every cross-object diagnostic of `config`; TLS paths resolve against `base_dir`.

    `incomplete` holds the lines of objects whose block had a line the parser refused:
    they are not reported again as missing what that line meant (no cascades)."""
    findings = Findings(config.file, frozenset(incomplete))
    for ctx in config.contexts.values():
        for check in _PER_CONTEXT:
            check(ctx, findings)
        check_ssl_proxies(ctx, Path(base_dir), findings)
    check_vip_claims(config, findings)
    check_replicate(config, findings)
    return sorted(findings.diagnostics, key=lambda d: d.line)
