"""Configuration texts for the end-to-end tests, filled with free ports."""
from __future__ import annotations

HOSTS = {"lnx1": "127.0.1.11", "lnx2": "127.0.1.12", "lnx3": "127.0.1.13", "lnx4": "127.0.1.14",
         "lnx9": "127.0.1.19", "db1": "127.0.1.21", "db2": "127.0.1.22"}


def hosts(*names: str, extra: dict[str, str] | None = None) -> str:
    out = ""
    for n in names:
        out += f"rserver host {n}\n  ip address {HOSTS[n]}\n"
        for line in (extra or {}).get(n, "").splitlines():
            out += f"  {line}\n"
        out += "  inservice\n"
    return out


def farm(name: str, members: list[tuple[str, int, str | None]], predictor: str = "roundrobin", extra: str = "",
         member_extra: dict[str, str] | None = None) -> str:
    out = f"serverfarm host {name}\n  predictor {predictor}\n{extra}"
    for rs, port, group in members:
        out += f"  rserver {rs} {port}\n"
        if group:
            out += f"    buddy-group {group}\n"
        for line in (member_extra or {}).get(rs, "").splitlines():
            out += f"    {line}\n"
        out += "    inservice\n"
    return out


def sticky_ip(name: str, farm_name: str, group: str | None, mask: str = "255.255.255.255", timeout: str = "30",
              address: str = "source") -> str:
    out = f"sticky ip-netmask {mask} address {address} {name}\n  timeout {timeout}\n  serverfarm {farm_name}\n"
    return out + (f"  buddy-group {group}\n" if group else "")


def vip_policy(name: str, port: int, target: str, http: bool = False, sticky: bool = True,
               ssl_proxy: str | None = None) -> tuple[str, str]:
    """(class-map + load-balance policy text, multi-match class text) for one VIP."""
    kind = "http " if http else ""
    action = f"sticky-serverfarm {target}" if sticky else f"serverfarm {target}"
    defs = (f"class-map match-all {name}\n  2 match virtual-address 127.0.0.100 tcp eq {port}\n"
            f"policy-map type loadbalance {kind}first-match {name}-lb\n  class class-default\n    {action}\n")
    mm = f"  class {name}\n    loadbalance vip inservice\n    loadbalance policy {name}-lb\n"
    if ssl_proxy:
        mm += f"    ssl-proxy server {ssl_proxy}\n"
    return defs, mm


def service(*vips: tuple[str, str], head: str = "") -> str:
    defs = "".join(v[0] for v in vips)
    mm = "policy-map multi-match int\n" + "".join(v[1] for v in vips)
    return defs + mm + "service-policy input int\n"


def shopping_cart(p, tls: bool = True, http_l7: bool = True) -> str:
    """SPEC §2 example: HTTP VIP (L7) + HTTPS VIP terminated, lnx1/lnx2 blue/red, PAT."""
    text = hosts("lnx1", "lnx2")
    text += farm("http", [("lnx1", p["lnx1_http"], "blue"), ("lnx2", p["lnx2_http"], "red")])
    text += farm("decrypted", [("lnx1", p["lnx1_dec"], "blue"), ("lnx2", p["lnx2_dec"], "red")])
    text += sticky_ip("stick-cart", "http", "alpha").replace("address source", "address both")
    text += sticky_ip("stick-credit", "decrypted", "alpha").replace("address source", "address both")
    text += service(vip_policy("http-vip", p["vip_http"], "stick-cart", http=http_l7),
                    vip_policy("https-vip", p["vip_https"], "stick-credit", http=http_l7,
                               ssl_proxy="SHOP-TLS" if tls else None))
    if tls:
        text += "ssl-proxy service SHOP-TLS\n  cert shop.crt\n  key shop.key\n"
    return text
